using Api.Auth;
using Grains.Abstractions;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;
using Runtime;

namespace Api.Live;

/// <summary>
/// The live hub at /hubs/live. Every operator receives "alert" events; "aggregate" events go to clients that
/// called SubscribeSensor for that sensor; "command" events go to clients that called SubscribeDevice.
/// Events carry an EventId that repeats if a replay reproduces the event, so clients drop ids they have seen.
/// </summary>
[Authorize(Policy = Roles.DevicePolicy)]
public sealed class LiveHub(IHostApplicationLifetime lifetime, Microsoft.Extensions.Options.IOptions<LiveOptions> options,
    LiveSubscriptions followers) : Hub
{
    public const string Path = "/hubs/live";
    public const string Operators = "operators";

    public static string SensorGroup(string sensorId) => $"sensor:{sensorId}";

    public static string DeviceGroup(string deviceId) => $"device:{deviceId}";

    public override async Task OnConnectedAsync()
    {
        if (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            // A client reconnecting while this node stops would hold its shutdown until the timeout: it connects elsewhere
            // or later.
            Context.Abort();
            return;
        }

        if (Context.User?.IsInRole(Roles.Operator) == true)
        {
            await Groups.AddToGroupAsync(Context.ConnectionId, Operators);
        }
        await base.OnConnectedAsync();
    }

    public override async Task OnDisconnectedAsync(Exception? exception)
    {
        // SignalR takes the connection out of its groups; the count of followers drops with it.
        foreach (var group in Subscriptions)
        {
            followers.Remove(group);
        }
        Subscriptions.Clear();
        await base.OnDisconnectedAsync(exception);
    }

    public async Task SubscribeSensor(string sensorId)
    {
        RequireOperator();
        RequireSensorId(sensorId);
        await JoinAsync(SensorGroup(sensorId));
    }

    public Task UnsubscribeSensor(string sensorId) => LeaveAsync(SensorGroup(sensorId));

    public async Task SubscribeDevice(string deviceId)
    {
        RequireSensorId(deviceId);
        if (Context.User is null || !Context.User.MayActFor(deviceId))
        {
            throw new HubException($"This API key may not receive the commands of device '{deviceId}'.");
        }
        await JoinAsync(DeviceGroup(deviceId));
    }

    public Task UnsubscribeDevice(string deviceId) => LeaveAsync(DeviceGroup(deviceId));

    /// <summary>The sensor and device groups this connection follows (a connection's invocations run one at a time).</summary>
    private HashSet<string> Subscriptions
    {
        get
        {
            if (Context.Items.TryGetValue(nameof(Subscriptions), out var set))
            {
                return (HashSet<string>)set!;
            }

            var created = new HashSet<string>(StringComparer.Ordinal);
            Context.Items[nameof(Subscriptions)] = created;
            return created;
        }
    }

    private async Task JoinAsync(string group)
    {
        var max = options.Value.MaxSubscriptionsPerConnection;
        if (!Subscriptions.Contains(group) && Subscriptions.Count >= max)
        {
            throw new HubException($"This connection already follows {max} sensors and devices, its limit (Live:MaxSubscriptionsPerConnection); "
                + "unsubscribe from one first.");
        }
        if (Subscriptions.Add(group))
        {
            followers.Add(group);
        }
        await Groups.AddToGroupAsync(Context.ConnectionId, group);
    }

    private async Task LeaveAsync(string group)
    {
        await Groups.RemoveFromGroupAsync(Context.ConnectionId, group);
        if (Subscriptions.Remove(group))
        {
            followers.Remove(group);
        }
    }

    private static void RequireSensorId(string id)
    {
        if (SensorIds.Problem(id ?? "") is { } problem)
        {
            throw new HubException($"Not a sensor id: it {problem}.");
        }
    }

    private void RequireOperator()
    {
        if (Context.User?.IsInRole(Roles.Operator) != true)
        {
            throw new HubException("Only operator keys may subscribe to sensors.");
        }
    }
}

/// <summary>
/// Logs what the hub's methods throw in the API's terms: a refusal (<see cref="HubException"/>: a client asked for what it
/// may not have) at Information, without a stack trace; anything else at Error. SignalR's own dispatcher would log both
/// at Error with a stack trace; its category is silenced in Program.cs so that a client's mistake never reads as a fault.
/// </summary>
public sealed partial class LiveHubErrors(ILogger<LiveHubErrors> logger) : IHubFilter
{
    public async ValueTask<object?> InvokeMethodAsync(HubInvocationContext invocationContext, Func<HubInvocationContext, ValueTask<object?>> next)
    {
        try
        {
            return await next(invocationContext);
        }
        catch (HubException e)
        {
            LogRefused(logger, invocationContext.HubMethodName, e.Message);
            throw;
        }
        catch (Exception e)
        {
            LogFailed(logger, e, invocationContext.HubMethodName);
            throw;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Live hub: {Method} refused: {Reason}")]
    private static partial void LogRefused(ILogger logger, string method, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Live hub: {Method} failed")]
    private static partial void LogFailed(ILogger logger, Exception exception, string method);
}

/// <summary>Settings of section "Live".</summary>
public sealed class LiveOptions
{
    /// <summary>Sensors and devices one hub connection may follow at once.</summary>
    public int MaxSubscriptionsPerConnection { get; set; } = 100;
}

/// <summary>Forwards the live events of the cluster to the hub's clients, and commands to the MQTT devices connected here.</summary>
public sealed partial class LiveEventForwarder(ILiveEvents events, IHubContext<LiveHub> hub, Cluster.ClusterMetricsSampler metrics,
    Mqtt.MqttCommands mqtt, LiveSubscriptions followers,
    ILogger<LiveEventForwarder> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var output in events.SubscribeAsync(stoppingToken))
        {
            metrics.Observe(output);
            try
            {
                switch (output)
                {
                    case AlertEvent alert:
                        await hub.Clients.Group(LiveHub.Operators).SendAsync("alert",
                            new AlertEventDto(alert.Id, alert.Kind.ToString().ToLowerInvariant(), alert.Alert.ToDto()), stoppingToken);
                        break;
                    case MinuteAggregate aggregate when followers.IsFollowed(LiveHub.SensorGroup(aggregate.SensorId)):
                        await hub.Clients.Group(LiveHub.SensorGroup(aggregate.SensorId)).SendAsync("aggregate",
                            new AggregateEventDto(aggregate.Id, aggregate.SensorId, Map.Time(aggregate.MinuteMs),
                                aggregate.Metrics.Select(m => m.ToDto()).ToArray(),
                                aggregate.Outside?.ToDictionary(o => o.Name, o => o.Value, StringComparer.Ordinal)), stoppingToken);
                        break;
                    case DeviceCommand command:
                        await hub.Clients.Group(LiveHub.DeviceGroup(command.DeviceId)).SendAsync("command",
                            new CommandEventDto(command.Id, command.ToDto()), stoppingToken);
                        await mqtt.DeliverAsync(command);
                        break;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogForwardFailed(logger, e, output.Id);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Live event {EventId} could not be sent to hub clients")]
    private static partial void LogForwardFailed(ILogger logger, Exception exception, string eventId);
}
