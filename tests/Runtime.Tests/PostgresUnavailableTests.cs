using Tests.Shared;
using System.Net.Sockets;
using Npgsql;
using Runtime.Postgres;

namespace Runtime.Tests;

/// <summary>Which PostgreSQL errors mean "the database cannot be used now" (the Api answers 503 with Retry-After).</summary>
public sealed class PostgresUnavailableTests
{
    [Theory]
    [InlineData("57P01")] // terminating connection due to administrator command: a fast shutdown or restart
    [InlineData("57P02")]
    [InlineData("57P03")] // the database system is starting up
    [InlineData("08006")]
    [InlineData("53300")]
    public void A_server_shutting_down_or_refusing_connections_is_unavailable(string sqlState) =>
        Assert.True(PostgresUnavailableException.IsUnavailable(new PostgresException("down", "FATAL", "FATAL", sqlState)));

    [Fact]
    public void A_lost_connection_or_one_that_cannot_be_opened_is_unavailable()
    {
        Assert.True(PostgresUnavailableException.IsUnavailable(new NpgsqlException("Exception while reading from stream", new EndOfStreamException())));
        Assert.True(PostgresUnavailableException.IsUnavailable(new PostgresUnavailableException("Cannot connect", new SocketException(111))));
    }

    [Theory]
    [InlineData("23505")] // unique violation
    [InlineData("42P01")] // undefined table
    public void Other_database_errors_are_not(string sqlState)
    {
        Assert.False(PostgresUnavailableException.IsUnavailable(new PostgresException("bad", "ERROR", "ERROR", sqlState)));
        Assert.False(PostgresUnavailableException.IsUnavailable(new InvalidOperationException("x")));
    }
}
