using System.Collections.Concurrent;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Api.Mqtt;

/// <summary>
/// One MQTT client of this node: a device (its client id is its device id) and the API key it connected with. Kept while
/// it is connected and, for a persistent session, until the session expires (what it subscribed to and the commands it
/// has not acknowledged yet survive a reconnect to this node).
/// </summary>
public sealed class MqttClient(string deviceId, string keyName, bool mayActForAny, MqttProtocolVersion protocol, bool persistent)
{
    public string DeviceId { get; } = deviceId;

    public string KeyName { get; } = keyName;

    /// <summary>An operator key: may publish for any device, not only the client's own.</summary>
    public bool MayActForAny { get; } = mayActForAny;

    public MqttProtocolVersion Protocol { get; } = protocol;

    public bool IsV5 => Protocol == MqttProtocolVersion.V500;

    public bool Persistent { get; } = persistent;

    /// <summary>Since when the client is connected; null while a persistent session waits for it.</summary>
    public DateTimeOffset? ConnectedAt { get; set; }

    /// <summary>The connection (client id and remote end point) the client is connected on.</summary>
    public string? Connection { get; set; }

    public DateTimeOffset? DisconnectedAt { get; set; }

    /// <summary>The QoS the client subscribed to its commands topic with; null when it did not subscribe.</summary>
    public MqttQualityOfServiceLevel? CommandsQos { get; set; }

    /// <summary>Ids of commands handed to the session and not acknowledged yet.</summary>
    public ConcurrentDictionary<string, byte> Unacknowledged { get; } = new(StringComparer.Ordinal);

    /// <summary>A reconnect as the same key to a persistent session of this node keeps its subscription and unacknowledged commands.</summary>
    public MqttClient ResumedAs(MqttClient next)
    {
        if (!Persistent || !next.Persistent || KeyName != next.KeyName)
        {
            return next;
        }
        next.CommandsQos = CommandsQos;
        foreach (var id in Unacknowledged.Keys)
        {
            next.Unacknowledged.TryAdd(id, 0);
        }
        return next;
    }
}

/// <summary>The MQTT clients of this node by client id, and the connections each API key holds.</summary>
public sealed class MqttClients
{
    private readonly ConcurrentDictionary<string, MqttClient> _clients = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, MqttClient> _validated = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _connectionsPerKey = new(StringComparer.Ordinal);

    /// <summary>How long a validated connection holds its place in its key's count before it connects.</summary>
    private const long ReservationMs = 30_000;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, (string KeyName, long AtMs)> _reserved = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _reservedPerKey = new(StringComparer.Ordinal);
    private readonly Queue<(string Connection, long AtMs)> _reservations = new();

    /// <summary>Per key, the persistent sessions of this node that wait for their client, oldest first.</summary>
    private readonly Dictionary<string, SortedSet<(long AtTicks, string ClientId)>> _waiting = new(StringComparer.Ordinal);

    public MqttClient? Get(string clientId) => _clients.GetValueOrDefault(clientId);

    /// <summary>The clients connected now.</summary>
    public IEnumerable<MqttClient> ConnectedNow => _clients.Values.Where(c => c.ConnectedAt is not null);

    public int ConnectedCount => _connectionsPerKey.Values.Sum();

    /// <summary>Connections the key holds, not counting <paramref name="clientId"/>'s (a reconnect takes its place).</summary>
    public int ConnectionsOf(string keyName, string clientId) =>
        _connectionsPerKey.GetValueOrDefault(keyName) - (_clients.TryGetValue(clientId, out var c) && c.ConnectedAt is not null && c.KeyName == keyName ? 1 : 0);

    /// <summary>The key that holds a session under this client id, when it is another than <paramref name="keyName"/>.</summary>
    public string? OtherOwner(string clientId, string keyName) =>
        _clients.TryGetValue(clientId, out var c) && c.KeyName != keyName ? c.KeyName : null;

    /// <summary>
    /// Takes a connection of the client's key when the key holds fewer than <paramref name="maxPerKey"/> (connected, or
    /// validated and about to be), in one step: a burst of connects at once cannot pass the limit together. The validated
    /// connection becomes the client when it is connected; it is kept by client id and remote end point, so two connects
    /// under one client id each find their own. A reservation that never connects lapses after 30 s.
    /// </summary>
    public bool TryValidate(MqttClient client, System.Net.EndPoint? remote, int maxPerKey, long nowMs)
    {
        var connection = Connection(client.DeviceId, remote);
        lock (_gate)
        {
            Expire(nowMs);
            var held = ConnectionsOf(client.KeyName, client.DeviceId) + _reservedPerKey.GetValueOrDefault(client.KeyName);
            if (held >= maxPerKey)
            {
                return false;
            }
            Release(connection);
            _reserved[connection] = (client.KeyName, nowMs);
            _reservedPerKey[client.KeyName] = _reservedPerKey.GetValueOrDefault(client.KeyName) + 1;
            _reservations.Enqueue((connection, nowMs));
            _validated[connection] = client;
            return true;
        }
    }

    /// <summary>A validated connection that ended before it was connected.</summary>
    public void Abandoned(string clientId, System.Net.EndPoint? remote)
    {
        var connection = Connection(clientId, remote);
        lock (_gate)
        {
            Release(connection);
            _validated.TryRemove(connection, out _);
        }
    }

    private static string Connection(string clientId, System.Net.EndPoint? remote) => clientId + "\n" + remote;

    private void Release(string connection)
    {
        if (_reserved.Remove(connection, out var reservation))
        {
            _reservedPerKey[reservation.KeyName] = _reservedPerKey[reservation.KeyName] - 1;
        }
    }

    private void Expire(long nowMs)
    {
        while (_reservations.TryPeek(out var oldest) && nowMs - oldest.AtMs >= ReservationMs)
        {
            _reservations.Dequeue();
            if (_reserved.TryGetValue(oldest.Connection, out var reservation) && reservation.AtMs == oldest.AtMs)
            {
                Release(oldest.Connection);
                _validated.TryRemove(oldest.Connection, out _);
            }
        }
    }

    /// <summary>
    /// The validated connection is connected: it becomes the client of its id. When the id's previous connection has not
    /// ended yet (a device that reconnects at once, or takes its session over), the new one takes its place in the key's
    /// count, and the previous one's end changes nothing (<see cref="Disconnected"/>).
    /// </summary>
    public MqttClient? Connected(string clientId, System.Net.EndPoint? remote, DateTimeOffset now)
    {
        var connection = Connection(clientId, remote);
        lock (_gate)
        {
            if (!_validated.TryRemove(connection, out var next))
            {
                return null;
            }
            Release(connection);
            next.ConnectedAt = now;
            next.Connection = connection;
            if (_clients.TryGetValue(clientId, out var previous))
            {
                if (previous.ConnectedAt is not null)
                {
                    _connectionsPerKey.AddOrUpdate(previous.KeyName, 0, (_, n) => Math.Max(0, n - 1));
                }
                StopWaiting(previous, clientId);
            }
            var client = _clients.AddOrUpdate(clientId, next, (_, existing) => existing.ResumedAs(next));
            _connectionsPerKey.AddOrUpdate(client.KeyName, 1, (_, n) => n + 1);
            return client;
        }
    }

    /// <summary>
    /// The connection ended: a clean session is forgotten, a persistent one waits for its client. Null (and nothing
    /// changes) when the client is not connected on that connection: it has connected again since.
    /// </summary>
    public MqttClient? Disconnected(string clientId, System.Net.EndPoint? remote, bool sessionKept, DateTimeOffset now)
    {
        lock (_gate)
        {
            if (!_clients.TryGetValue(clientId, out var client) || client.ConnectedAt is null || client.Connection != Connection(clientId, remote))
            {
                return null;
            }
            client.ConnectedAt = null;
            client.DisconnectedAt = now;
            _connectionsPerKey.AddOrUpdate(client.KeyName, 0, (_, n) => Math.Max(0, n - 1));
            if (!sessionKept)
            {
                _clients.TryRemove(KeyValuePair.Create(clientId, client));
            }
            else if (client.Persistent)
            {
                if (!_waiting.TryGetValue(client.KeyName, out var sessions))
                {
                    _waiting[client.KeyName] = sessions = [];
                }
                sessions.Add((now.UtcTicks, clientId));
            }
            return client;
        }
    }

    /// <summary>
    /// The persistent sessions of <paramref name="keyName"/> waiting for their client beyond <paramref name="max"/>, oldest
    /// first; they are no longer counted (the caller deletes them).
    /// </summary>
    public IReadOnlyList<string> WaitingOverLimit(string keyName, int max)
    {
        lock (_gate)
        {
            if (!_waiting.TryGetValue(keyName, out var sessions) || sessions.Count <= max)
            {
                return [];
            }
            var over = sessions.Take(sessions.Count - max).ToList();
            foreach (var entry in over)
            {
                sessions.Remove(entry);
            }
            return over.Select(e => e.ClientId).ToArray();
        }
    }

    /// <summary>Persistent sessions of the key waiting for their client on this node.</summary>
    public int WaitingCount(string keyName)
    {
        lock (_gate)
        {
            return _waiting.TryGetValue(keyName, out var sessions) ? sessions.Count : 0;
        }
    }

    private void StopWaiting(MqttClient client, string clientId)
    {
        if (client.ConnectedAt is null && client.DisconnectedAt is { } at && _waiting.TryGetValue(client.KeyName, out var sessions))
        {
            sessions.Remove((at.UtcTicks, clientId));
            if (sessions.Count == 0)
            {
                _waiting.Remove(client.KeyName);
            }
        }
    }

    /// <summary>A persistent session expired.</summary>
    public void Forget(string clientId)
    {
        if (_clients.TryGetValue(clientId, out var client) && client.ConnectedAt is null)
        {
            lock (_gate)
            {
                StopWaiting(client, clientId);
            }
            _clients.TryRemove(KeyValuePair.Create(clientId, client));
        }
    }
}
