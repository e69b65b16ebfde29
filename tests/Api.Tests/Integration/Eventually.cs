namespace Api.Tests.Integration;

/// <summary>Waits on a condition with a deadline (no fixed sleeps): the read store fills after a checkpoint.</summary>
public static class Eventually
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    public static async Task Until(Func<Task<bool>> condition, TimeSpan? timeout = null, string? what = null)
    {
        await Value(async () => await condition() ? new object() : null, timeout, what);
    }

    /// <summary>Polls <paramref name="probe"/> until it returns non-null, and returns that value.</summary>
    public static async Task<T> Value<T>(Func<Task<T?>> probe, TimeSpan? timeout = null, string? what = null)
        where T : class
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (true)
        {
            if (await probe() is { } value)
            {
                return value;
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Condition not met within {(timeout ?? DefaultTimeout).TotalSeconds} s{(what is null ? "" : ": " + what)}");
            }
            await Task.Delay(20);
        }
    }

    /// <summary>Polls <paramref name="probe"/> until it returns a JSON value, and returns it.</summary>
    public static async Task<System.Text.Json.JsonElement> Json(Func<Task<System.Text.Json.JsonElement?>> probe, TimeSpan? timeout = null, string? what = null)
    {
        var boxed = await Value<object>(async () => await probe() is { } v ? v : null, timeout, what);
        return (System.Text.Json.JsonElement)boxed;
    }
}
