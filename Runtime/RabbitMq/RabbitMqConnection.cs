using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace Runtime.RabbitMq;

/// <summary>
/// One AMQP connection with its own reconnect loop (the client's automatic recovery is off, so that publishers and
/// stream readers decide themselves how to resume: readers from the offset after the last one they delivered).
/// While the connection is down, <see cref="Current"/> is null and a loop retries every <see cref="RabbitMqOptions.ReconnectInterval"/>.
/// </summary>
internal sealed partial class RabbitMqConnection : IAsyncDisposable
{
    private readonly ConnectionFactory _factory;
    private readonly RabbitMqOptions _options;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _connectLock = new(1, 1);
    private readonly CancellationTokenSource _disposed = new();
    private readonly Lock _gate = new();
    private IConnection? _current;
    private TaskCompletionSource<IConnection> _ready = NewReady();
    private Task? _reconnecting;
    private volatile bool _blocked;

    public RabbitMqConnection(RabbitMqOptions options, string name, ILogger logger)
    {
        options.ThrowIfInvalid();
        _options = options;
        _logger = logger;
        _factory = new ConnectionFactory
        {
            Uri = new Uri(options.Uri),
            ClientProvidedName = name,
            AutomaticRecoveryEnabled = false,
            TopologyRecoveryEnabled = false,
            RequestedHeartbeat = TimeSpan.FromSeconds(10),
            RequestedConnectionTimeout = TimeSpan.FromSeconds(10),
            ContinuationTimeout = TimeSpan.FromSeconds(10),
        };
        Endpoint = options.Describe();
    }

    /// <summary>host:port and vhost, for messages (never the credentials).</summary>
    public string Endpoint { get; }

    /// <summary>The open connection, or null while it is down.</summary>
    public IConnection? Current => _current is { IsOpen: true } c ? c : null;

    /// <summary>True once a connection was made (the reconnect loop then owns reconnecting).</summary>
    public bool EverConnected { get; private set; }

    /// <summary>True while the broker blocks publishers (a memory or disk alarm).</summary>
    public bool Blocked => _blocked;

    /// <summary>
    /// Connects now if not connected. Throws <see cref="RabbitMqUnreachableException"/> naming host, port and vhost
    /// when the broker cannot be reached or refuses the login.
    /// </summary>
    public async Task<IConnection> ConnectAsync(CancellationToken cancellationToken)
    {
        if (Current is { } open)
        {
            return open;
        }
        await _connectLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Current is { } again)
            {
                return again;
            }
            ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
            IConnection connection;
            try
            {
                connection = await _factory.CreateConnectionAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                throw new RabbitMqUnreachableException(
                    $"RabbitMQ at {Endpoint} is unreachable: {Describe(e)}", e);
            }
            connection.ConnectionShutdownAsync += OnShutdownAsync;
            connection.ConnectionBlockedAsync += OnBlockedAsync;
            connection.ConnectionUnblockedAsync += OnUnblockedAsync;
            _blocked = false;
            EverConnected = true;
            lock (_gate)
            {
                _current = connection;
                _ready.TrySetResult(connection);
            }
            return connection;
        }
        finally
        {
            _connectLock.Release();
        }
    }

    /// <summary>The open connection; while down, waits for the reconnect loop (starting it if nothing has connected yet).</summary>
    public async Task<IConnection> WaitAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (Current is { } open)
            {
                return open;
            }
            Task<IConnection> ready;
            lock (_gate)
            {
                if (_ready.Task.IsCompletedSuccessfully && !_ready.Task.Result.IsOpen)
                {
                    _ready = NewReady();
                }
                ready = _ready.Task;
                StartReconnectLocked();
            }
            await ready.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Starts the reconnect loop unless it runs already (for first use without an explicit connect).</summary>
    public void EnsureReconnecting()
    {
        if (Current is null)
        {
            lock (_gate)
            {
                StartReconnectLocked();
            }
        }
    }

    private void StartReconnectLocked()
    {
        if (_reconnecting is { IsCompleted: false } || _disposed.IsCancellationRequested)
        {
            return;
        }
        _reconnecting = Task.Run(ReconnectLoopAsync);
    }

    private async Task ReconnectLoopAsync()
    {
        var attempt = 0;
        while (!_disposed.IsCancellationRequested && Current is null)
        {
            if (attempt++ > 0)
            {
                try
                {
                    await Task.Delay(_options.ReconnectInterval, _disposed.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            try
            {
                await ConnectAsync(_disposed.Token).ConfigureAwait(false);
                LogReconnected(_logger, Endpoint, attempt);
                return;
            }
            catch (OperationCanceledException) when (_disposed.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (Exception e)
            {
                if (attempt == 1 || attempt % 30 == 0)
                {
                    LogReconnectFailed(_logger, Endpoint, attempt, e.Message);
                }
            }
        }
    }

    private Task OnShutdownAsync(object sender, ShutdownEventArgs e)
    {
        lock (_gate)
        {
            if (ReferenceEquals(_current, sender))
            {
                _current = null;
                _ready = NewReady();
            }
        }
        _blocked = false;
        if (e.Initiator != ShutdownInitiator.Application && !_disposed.IsCancellationRequested)
        {
            LogConnectionLost(_logger, Endpoint, e.ReplyCode, e.ReplyText);
            lock (_gate)
            {
                StartReconnectLocked();
            }
        }
        return Task.CompletedTask;
    }

    private Task OnBlockedAsync(object sender, ConnectionBlockedEventArgs e)
    {
        _blocked = true;
        LogBlocked(_logger, Endpoint, e.Reason);
        return Task.CompletedTask;
    }

    private Task OnUnblockedAsync(object sender, AsyncEventArgs e)
    {
        _blocked = false;
        LogUnblocked(_logger, Endpoint);
        return Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed.IsCancellationRequested)
        {
            return;
        }
        _disposed.Cancel();
        IConnection? connection;
        lock (_gate)
        {
            connection = _current;
            _current = null;
            _ready.TrySetException(new ObjectDisposedException(nameof(RabbitMqConnection)));
        }
        if (_reconnecting is { } loop)
        {
            await loop.ConfigureAwait(false);
        }
        if (connection is not null)
        {
            try
            {
                await connection.CloseAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Closing a connection the broker already dropped.
            }
            await connection.DisposeAsync().ConfigureAwait(false);
        }
        _disposed.Dispose();
    }

    /// <summary>Closes and disposes a channel, ignoring that it or its connection is already gone.</summary>
    internal static async Task CloseQuietlyAsync(IChannel channel)
    {
        try
        {
            if (channel.IsOpen)
            {
                await channel.CloseAsync().ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is AlreadyClosedException or OperationInterruptedException or OperationCanceledException or TimeoutException
                                      or ObjectDisposedException)
        {
        }
        try
        {
            await channel.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is AlreadyClosedException or OperationInterruptedException or ObjectDisposedException)
        {
        }
    }

    private static TaskCompletionSource<IConnection> NewReady() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static string Describe(Exception e)
    {
        // BrokerUnreachableException wraps the socket or authentication error that says what actually went wrong.
        var inner = e;
        while (inner.InnerException is not null && inner is RabbitMQ.Client.Exceptions.BrokerUnreachableException or AggregateException)
        {
            inner = inner.InnerException;
        }
        return inner.Message;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "RabbitMQ connection to {Endpoint} lost ({ReplyCode} {ReplyText}); reconnecting")]
    private static partial void LogConnectionLost(ILogger logger, string endpoint, ushort replyCode, string replyText);

    [LoggerMessage(Level = LogLevel.Information, Message = "RabbitMQ connection to {Endpoint} re-established after {Attempts} attempts")]
    private static partial void LogReconnected(ILogger logger, string endpoint, int attempts);

    [LoggerMessage(Level = LogLevel.Warning, Message = "RabbitMQ at {Endpoint}: reconnect attempt {Attempt} failed: {Error}")]
    private static partial void LogReconnectFailed(ILogger logger, string endpoint, int attempt, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "RabbitMQ at {Endpoint} blocks publishers: {Reason}")]
    private static partial void LogBlocked(ILogger logger, string endpoint, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "RabbitMQ at {Endpoint} unblocked publishers")]
    private static partial void LogUnblocked(ILogger logger, string endpoint);
}

/// <summary>The broker could not be reached or refused the connection; the message names host, port and vhost.</summary>
public sealed class RabbitMqUnreachableException(string message, Exception? inner) : Exception(message, inner);
