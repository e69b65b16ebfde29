using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;

namespace Api.Mqtt;

/// <summary>
/// Closes an MQTT connection whose next packet announces more than <see cref="MqttOptions.MaxPacketBytes"/>, before its
/// body is buffered (MQTTnet has no such limit: it would buffer any announced length, up to 256 MiB). The MQTT connection
/// always consumes whole packets, so every buffer it reads starts at a packet's fixed header, whose Remaining Length is
/// checked here.
/// </summary>
public sealed class MqttPacketSizeLimit(ConnectionDelegate next, int maxPacketBytes)
{
    public async Task OnConnectedAsync(ConnectionContext connection)
    {
        var transport = connection.Transport;
        connection.Transport = new LimitedPipe(transport, maxPacketBytes);
        try
        {
            await next(connection);
        }
        finally
        {
            connection.Transport = transport;
        }
    }

    /// <summary>The Remaining Length a fixed header at the start of <paramref name="buffer"/> announces, or null while it is incomplete.</summary>
    public static long? AnnouncedLength(ReadOnlySequence<byte> buffer)
    {
        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryRead(out _))
        {
            return null;
        }
        long length = 0;
        var multiplier = 1;
        for (var i = 0; i < 4; i++)
        {
            if (!reader.TryRead(out var b))
            {
                return null;
            }
            length += (b & 0x7F) * multiplier;
            if ((b & 0x80) == 0)
            {
                return length;
            }
            multiplier *= 128;
        }
        return long.MaxValue; // a fifth length byte: malformed, refused like an oversized packet
    }

    private sealed class LimitedPipe(IDuplexPipe inner, int max) : IDuplexPipe
    {
        public PipeReader Input { get; } = new LimitedReader(inner.Input, max);

        public PipeWriter Output => inner.Output;
    }

    private sealed class LimitedReader(PipeReader inner, int max) : PipeReader
    {
        public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            var result = await inner.ReadAsync(cancellationToken);
            Check(result.Buffer);
            return result;
        }

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result))
            {
                return false;
            }
            Check(result.Buffer);
            return true;
        }

        private void Check(ReadOnlySequence<byte> buffer)
        {
            if (AnnouncedLength(buffer) > max)
            {
                throw new InvalidDataException($"An MQTT packet announced more than {max} bytes (Mqtt:MaxPacketBytes).");
            }
        }

        public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);
    }
}
