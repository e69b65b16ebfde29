using System.Text.Json;
using Api.Live;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.AspNetCore.TestHost;

namespace Api.Tests.Integration;

/// <summary>
/// A connection to the live hub through the SignalR .NET client, as the dashboard connects: negotiate, then
/// WebSockets, the API key as access token. Both go through the factory's TestServer. Records the events the hub
/// sends ("alert", "aggregate", "command"), in the order they arrive.
/// </summary>
public sealed class LiveHubConnection : IAsyncDisposable
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private readonly HubConnection _connection;
    private readonly Lock _gate = new();
    private readonly List<(string Target, JsonElement Event)> _events = [];
    private TaskCompletionSource _received = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? _closed;

    private LiveHubConnection(TestServer server, string key)
    {
        _connection = new HubConnectionBuilder()
            .WithUrl(new Uri(server.BaseAddress, LiveHub.Path), HttpTransportType.WebSockets, o =>
            {
                o.AccessTokenProvider = () => Task.FromResult<string?>(key);
                o.HttpMessageHandlerFactory = _ => server.CreateHandler();
                o.WebSocketFactory = async (context, cancellationToken) =>
                {
                    // The client sets no headers on a socket it did not create: send the key as it does on its own sockets.
                    var client = server.CreateWebSocketClient();
                    client.ConfigureRequest = request => request.Headers.Authorization = $"Bearer {key}";
                    return await client.ConnectAsync(context.Uri, cancellationToken);
                };
            })
            .Build();
        foreach (var target in new[] { "alert", "aggregate", "command" })
        {
            _connection.On<JsonElement>(target, e => Record(target, e));
        }
        _connection.Closed += error =>
        {
            lock (_gate)
            {
                _closed = error?.Message ?? "closed";
                Signal();
            }
            return Task.CompletedTask;
        };
    }

    public static async Task<LiveHubConnection> ConnectAsync(TestServer server, string key)
    {
        var connection = new LiveHubConnection(server, key);
        await connection._connection.StartAsync().WaitAsync(DefaultTimeout);
        return connection;
    }

    /// <summary>Invokes a hub method and waits for its completion; throws <see cref="Microsoft.AspNetCore.SignalR.HubException"/> when the server reports an error.</summary>
    public Task InvokeAsync(string method, string argument) => _connection.InvokeAsync(method, argument).WaitAsync(DefaultTimeout);

    /// <summary>Waits for an event of <paramref name="target"/> that matches, and returns it.</summary>
    public async Task<JsonElement> WaitForAsync(string target, Func<JsonElement, bool> match, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (true)
        {
            Task received;
            lock (_gate)
            {
                foreach (var (t, e) in _events)
                {
                    if (t == target && match(e))
                    {
                        return e;
                    }
                }
                if (_closed is { } closed)
                {
                    throw new InvalidOperationException($"The connection closed: {closed}");
                }
                received = _received.Task;
            }
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || await Task.WhenAny(received, Task.Delay(left)) != received)
            {
                throw new TimeoutException($"No '{target}' event matched within {(timeout ?? DefaultTimeout).TotalSeconds} s; received: "
                    + string.Join(", ", Events().Select(e => $"{e.Target} {e.Event.GetRawText()}")));
            }
        }
    }

    /// <summary>Every event received so far, in order.</summary>
    public IReadOnlyList<(string Target, JsonElement Event)> Events()
    {
        lock (_gate)
        {
            return _events.ToArray();
        }
    }

    /// <summary>The events of <paramref name="target"/> received so far.</summary>
    public IReadOnlyList<JsonElement> Events(string target) => Events().Where(e => e.Target == target).Select(e => e.Event).ToArray();

    private void Record(string target, JsonElement e)
    {
        lock (_gate)
        {
            _events.Add((target, e));
            Signal();
        }
    }

    private void Signal()
    {
        var received = _received;
        _received = new(TaskCreationOptions.RunContinuationsAsynchronously);
        received.TrySetResult();
    }

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}
