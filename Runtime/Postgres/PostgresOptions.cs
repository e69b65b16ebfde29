using Microsoft.Extensions.Options;
using Npgsql;

namespace Runtime.Postgres;

/// <summary>Settings of the PostgreSQL provider (section "Postgres").</summary>
public sealed class PostgresOptions
{
    /// <summary>Npgsql connection string, for example "Host=db;Port=5432;Database=iot;Username=iot;Password=...". Required.</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>Minute aggregates older than this (by minute start, against the current time) are deleted by
    /// <see cref="PostgresStore.DeleteExpiredAggregatesAsync"/>.</summary>
    public TimeSpan AggregateRetention { get; set; } = TimeSpan.FromDays(30);
}

/// <summary>Validates <see cref="PostgresOptions"/> (for ValidateOnStart, and by <see cref="PostgresStore"/> itself).</summary>
public sealed class PostgresOptionsValidator : IValidateOptions<PostgresOptions>
{
    public ValidateOptionsResult Validate(string? name, PostgresOptions options)
    {
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            failures.Add("Postgres:ConnectionString is required.");
        }
        else
        {
            try
            {
                var builder = new NpgsqlConnectionStringBuilder(options.ConnectionString);
                if (string.IsNullOrWhiteSpace(builder.Host))
                {
                    failures.Add("Postgres:ConnectionString must name a Host.");
                }
            }
            catch (ArgumentException e)
            {
                // The message names the offending keyword, never a value, so no password can leak through it.
                failures.Add($"Postgres:ConnectionString is not a valid connection string: {e.Message}");
            }
        }
        if (options.AggregateRetention <= TimeSpan.Zero)
        {
            failures.Add("Postgres:AggregateRetention must be positive.");
        }
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
