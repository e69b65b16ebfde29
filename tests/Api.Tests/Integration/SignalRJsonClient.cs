using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.TestHost;

namespace Api.Tests.Integration;

/// <summary>
/// A SignalR client speaking the JSON hub protocol by hand over a WebSocket, as a browser does when it skips
/// negotiation (the .NET SignalR client package does not restore here). Messages are JSON objects, each ended by
/// the record separator U+001E; a WebSocket message may hold several and a message may span several frames.
/// </summary>
public sealed class SignalRJsonClient : IAsyncDisposable
{
    private const byte RecordSeparator = 0x1e;
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private readonly WebSocket _socket;
    private readonly Lock _gate = new();
    private readonly List<JsonElement> _invocations = [];
    private readonly Dictionary<string, TaskCompletionSource<JsonElement>> _pending = [];
    private readonly TaskCompletionSource<JsonElement> _handshake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private TaskCompletionSource _received = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task _receiving = Task.CompletedTask;
    private int _nextInvocationId;

    private SignalRJsonClient(WebSocket socket) => _socket = socket;

    /// <summary>The close message (type 7) when the server closed the connection.</summary>
    public JsonElement? Closed { get; private set; }

    /// <summary>Connects straight over WebSockets (no negotiate) and completes the JSON protocol handshake.</summary>
    public static async Task<SignalRJsonClient> ConnectAsync(WebSocketClient client, Uri uri, CancellationToken cancellationToken = default)
    {
        var socket = await client.ConnectAsync(uri, cancellationToken);
        var connection = new SignalRJsonClient(socket);
        connection._receiving = Task.Run(connection.ReceiveLoopAsync);
        await connection.SendAsync("""{"protocol":"json","version":1}""");
        var handshake = await connection._handshake.Task.WaitAsync(DefaultTimeout, cancellationToken);
        if (handshake.EnumerateObject().Any())
        {
            throw new InvalidOperationException($"Handshake refused: {handshake.GetRawText()}");
        }
        return connection;
    }

    /// <summary>Invokes a hub method and waits for its completion; throws <see cref="HubErrorException"/> when the server reports an error.</summary>
    public async Task<JsonElement> InvokeAsync(string target, params object?[] arguments)
    {
        var id = Interlocked.Increment(ref _nextInvocationId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var completion = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            _pending[id] = completion;
        }
        await SendAsync(JsonSerializer.Serialize(new { type = 1, invocationId = id, target, arguments }));
        var result = await completion.Task.WaitAsync(DefaultTimeout);
        if (result.TryGetProperty("error", out var error))
        {
            throw new HubErrorException(error.GetString() ?? "");
        }
        return result;
    }

    /// <summary>Waits for a server invocation of <paramref name="target"/> whose first argument matches, and returns that argument.</summary>
    public async Task<JsonElement> WaitForAsync(string target, Func<JsonElement, bool> match, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (true)
        {
            Task received;
            lock (_gate)
            {
                foreach (var invocation in _invocations)
                {
                    if (invocation.GetProperty("target").GetString() == target && match(invocation.GetProperty("arguments")[0]))
                    {
                        return invocation.GetProperty("arguments")[0];
                    }
                }
                if (Closed is { } closed)
                {
                    throw new InvalidOperationException($"The server closed the connection: {closed.GetRawText()}");
                }
                received = _received.Task;
            }
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || await Task.WhenAny(received, Task.Delay(left)) != received)
            {
                throw new TimeoutException($"No '{target}' event matched within {(timeout ?? DefaultTimeout).TotalSeconds} s; received: "
                    + string.Join(", ", Events().Select(e => e.GetRawText())));
            }
        }
    }

    /// <summary>Every server invocation received so far (type 1 messages), in order.</summary>
    public IReadOnlyList<JsonElement> Events()
    {
        lock (_gate)
        {
            return _invocations.ToArray();
        }
    }

    /// <summary>The first arguments of the server invocations of <paramref name="target"/> received so far.</summary>
    public IReadOnlyList<JsonElement> Events(string target) =>
        Events().Where(e => e.GetProperty("target").GetString() == target).Select(e => e.GetProperty("arguments")[0]).ToArray();

    private Task SendAsync(string message) =>
        _socket.SendAsync(Encoding.UTF8.GetBytes(message + "\u001e"), WebSocketMessageType.Text, endOfMessage: true, _stop.Token);

    private async Task ReceiveLoopAsync()
    {
        var pending = new List<byte>();
        var buffer = new byte[4096];
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var result = await _socket.ReceiveAsync(buffer, _stop.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }
                pending.AddRange(buffer.AsSpan(0, result.Count));
                int end;
                while ((end = pending.IndexOf(RecordSeparator)) >= 0)
                {
                    var record = pending.GetRange(0, end).ToArray();
                    pending.RemoveRange(0, end + 1);
                    using var document = JsonDocument.Parse(record);
                    Dispatch(document.RootElement.Clone());
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
        }
        finally
        {
            lock (_gate)
            {
                Closed ??= JsonDocument.Parse("""{"type":7,"error":"connection ended"}""").RootElement.Clone();
                foreach (var waiting in _pending.Values)
                {
                    waiting.TrySetException(new InvalidOperationException("The connection ended before the invocation completed."));
                }
                Signal();
            }
            _handshake.TrySetException(new InvalidOperationException("The connection ended during the handshake."));
        }
    }

    private void Dispatch(JsonElement message)
    {
        if (!_handshake.Task.IsCompleted)
        {
            _handshake.TrySetResult(message);
            return;
        }
        var type = message.TryGetProperty("type", out var t) ? t.GetInt32() : 0;
        lock (_gate)
        {
            switch (type)
            {
                case 1: // invocation from the server
                    _invocations.Add(message);
                    break;
                case 3: // completion of one of ours
                    if (_pending.Remove(message.GetProperty("invocationId").GetString()!, out var completion))
                    {
                        completion.TrySetResult(message);
                    }
                    break;
                case 6: // ping
                    return;
                case 7: // close
                    Closed = message;
                    break;
            }
            Signal();
        }
    }

    private void Signal()
    {
        var received = _received;
        _received = new(TaskCreationOptions.RunContinuationsAsynchronously);
        received.TrySetResult();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State == WebSocketState.Open)
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(2));
            }
        }
        catch (Exception e) when (e is WebSocketException or TimeoutException or ObjectDisposedException)
        {
        }
        await _stop.CancelAsync();
        await _receiving.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _socket.Dispose();
        _stop.Dispose();
    }
}

/// <summary>The server answered an invocation with an error.</summary>
public sealed class HubErrorException(string message) : Exception(message);
