using System.Net;
using Api.Auth;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;
using MQTTnet.AspNetCore;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Protocol;
using MQTTnet.Server;

namespace Api.Mqtt;

/// <summary>
/// The MQTT endpoint: MQTTnet's server behind a TCP listener of its own (Mqtt:Address, Mqtt:Port) and the WebSocket path
/// <see cref="WebSocketPath"/> of the HTTP server. The TCP listener is a Kestrel server of its own rather than an endpoint
/// of the Api's: an endpoint added in code would replace the HTTP addresses the host is configured with (urls,
/// ASPNETCORE_HTTP_PORTS, launch profiles), and MQTTnet's own socket listener buffers whatever length a packet announces.
/// Both transports pass <see cref="MqttPacketSizeLimit"/>. The server starts before the listener opens and stops (clients
/// told the server is shutting down) when the application stops, before the HTTP server drains its connections.
/// </summary>
public sealed partial class MqttEndpoint(MqttServer server, MqttBroker broker, MqttClients clients, IServiceProvider services,
    IOptions<MqttOptions> options, IHostApplicationLifetime lifetime, TimeProvider time, ILoggerFactory loggers, ILogger<MqttEndpoint> logger)
    : IHostedService, IAsyncDisposable
{
    public const string WebSocketPath = "/mqtt";

    private static readonly TimeSpan SessionSweepInterval = TimeSpan.FromMinutes(1);

    private KestrelServer? _listener;
    private ITimer? _sweep;
    private int _stopped;

    /// <summary>The TCP endpoint the listener is bound to (its port when Mqtt:Port is 0); null when MQTT is disabled.</summary>
    public IPEndPoint? TcpEndPoint { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.Enabled)
        {
            return;
        }
        broker.Attach(server);
        await server.StartAsync();
        var kestrel = new KestrelServerOptions { ApplicationServices = services };
        kestrel.Limits.MaxConcurrentConnections = options.Value.MaxConnections;
        var address = IPAddress.Parse(options.Value.Address);
        ListenOptions? listen = null;
        kestrel.Listen(address, options.Value.Port, l =>
        {
            listen = l;
            l.Use(next => new MqttPacketSizeLimit(next, options.Value.MaxPacketBytes).OnConnectedAsync).UseMqtt();
        });
        _listener = new KestrelServer(Options.Create(kestrel),
            new SocketTransportFactory(Options.Create(new SocketTransportOptions()), loggers), loggers);
        try
        {
            await _listener.StartAsync(new NoHttp(), cancellationToken);
        }
        catch (IOException e)
        {
            throw new InvalidOperationException($"The MQTT listener cannot bind {options.Value.Address}:{options.Value.Port} ({e.Message}). "
                + "Set Mqtt:Port to a free port (0 takes any), or Mqtt:Enabled to false.", e);
        }
        TcpEndPoint = (IPEndPoint)listen!.EndPoint;
        LogListening(logger, TcpEndPoint.ToString(), WebSocketPath);
        _sweep = time.CreateTimer(_ => _ = SweepSessionsAsync(), null, SessionSweepInterval, SessionSweepInterval);
        lifetime.ApplicationStopping.Register(() => StopServerAsync().GetAwaiter().GetResult());
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await StopServerAsync();
        if (_listener is not null)
        {
            await _listener.StopAsync(cancellationToken);
        }
    }

    /// <summary>Stops the MQTT server once: its clients are told the server is shutting down and disconnected.</summary>
    private async Task StopServerAsync()
    {
        if (!options.Value.Enabled || Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }
        if (_sweep is not null)
        {
            await _sweep.DisposeAsync();
        }
        await server.StopAsync(new MqttServerStopOptionsBuilder().WithDefaultClientDisconnectOptions(
            new MqttServerClientDisconnectOptionsBuilder().WithReasonCode(MqttDisconnectReasonCode.ServerShuttingDown).Build()).Build());
    }

    /// <summary>
    /// Deletes the persistent sessions whose client has been away longer than their expiry, at most Mqtt:MaxSessionExpiry
    /// (MQTTnet removes an expired session only when its client id is seen again, and keeps MQTT 3.1.1 sessions forever).
    /// </summary>
    private async Task SweepSessionsAsync()
    {
        try
        {
            var now = time.GetUtcNow().UtcDateTime;
            var max = options.Value.MaxSessionExpiry;
            foreach (var session in await server.GetSessionsAsync())
            {
                if (session.DisconnectedTimestamp is not { } disconnected)
                {
                    continue;
                }
                var expiry = session.ExpiryInterval is 0 or uint.MaxValue ? max : TimeSpan.FromSeconds(Math.Min(session.ExpiryInterval, max.TotalSeconds));
                if (now - disconnected >= expiry)
                {
                    await session.DeleteAsync();
                    clients.Forget(session.Id);
                }
            }
        }
        catch (Exception e)
        {
            LogSweepFailed(logger, e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_sweep is not null)
        {
            await _sweep.DisposeAsync();
        }
        _listener?.Dispose();
    }

    /// <summary>The listener serves MQTT connections only: no HTTP request ever reaches it.</summary>
    private sealed class NoHttp : IHttpApplication<IFeatureCollection>
    {
        public IFeatureCollection CreateContext(IFeatureCollection contextFeatures) => contextFeatures;

        public Task ProcessRequestAsync(IFeatureCollection context) => Task.CompletedTask;

        public void DisposeContext(IFeatureCollection context, Exception? exception)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "MQTT listening on {EndPoint} (TCP) and {Path} (WebSockets)")]
    private static partial void LogListening(ILogger logger, string endPoint, string path);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sweeping expired MQTT sessions failed")]
    private static partial void LogSweepFailed(ILogger logger, Exception exception);
}

public static class MqttEndpointExtensions
{
    public static IServiceCollection AddMqtt(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<MqttOptions>().Bind(configuration.GetSection("Mqtt"))
            .Validate(o => o.Validate().Count == 0, "Mqtt settings are out of range")
            .ValidateOnStart();
        var options = configuration.GetSection("Mqtt").Get<MqttOptions>() ?? new MqttOptions();
        services.AddSingleton(new MqttServerOptionsBuilder()
            .WithPersistentSessions()
            // How long the server waits for a CONNECT and for a DISCONNECT to be written (MQTTnet's default is 100 s: a
            // socket that never speaks, or a client that reads nothing while it is taken over, would hold as long).
            .WithDefaultCommunicationTimeout(TimeSpan.FromSeconds(10))
            // Bounds the messages waiting to be sent to one client; the newest is refused past it (dropping the oldest
            // would keep it among the unacknowledged ones and send it again on reconnect, out of order).
            .WithMaxPendingMessagesPerClient(options.MaxUnacknowledgedCommands)
            .WithPendingMessagesOverflowStrategy(MqttPendingMessagesOverflowStrategy.DropNewMessage)
            .Build());
        services.AddMqttConnectionHandler();
        services.AddConnections();
        services.AddSingleton(sp => new MqttServer(sp.GetRequiredService<MqttServerOptions>(), sp.GetServices<IMqttServerAdapter>(),
            MqttNetNullLogger.Instance));
        services.AddSingleton<MqttClients>();
        services.AddSingleton<MqttCounters>();
        services.AddSingleton<MqttTelemetry>();
        services.AddSingleton<MqttCommands>();
        services.AddSingleton<MqttBroker>();
        services.AddSingleton<MqttPresence>();
        services.AddHostedService(sp => sp.GetRequiredService<MqttPresence>());
        services.AddSingleton<MqttEndpoint>();
        services.AddHostedService(sp => sp.GetRequiredService<MqttEndpoint>());
        return services;
    }

    /// <summary>MQTT over WebSockets at <see cref="MqttEndpoint.WebSocketPath"/> (sub-protocol "mqtt").</summary>
    public static IEndpointRouteBuilder MapMqttWebSockets(this IEndpointRouteBuilder routes)
    {
        var options = routes.ServiceProvider.GetRequiredService<IOptions<MqttOptions>>().Value;
        if (options.Enabled)
        {
            routes.MapConnections(MqttEndpoint.WebSocketPath, new HttpConnectionDispatcherOptions
            {
                WebSockets = { SubProtocolSelector = MqttSubProtocolSelector.SelectSubProtocol },
                Transports = HttpTransportType.WebSockets,
            }, b => b.Use(next => new MqttPacketSizeLimit(next, options.MaxPacketBytes).OnConnectedAsync).UseMqtt());
        }
        return routes;
    }
}
