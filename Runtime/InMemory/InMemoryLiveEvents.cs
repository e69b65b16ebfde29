using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Grains.Abstractions;

namespace Runtime.InMemory;

/// <summary>Live events within one process: every subscriber gets every output.</summary>
public sealed class InMemoryLiveEvents : ILiveEvents
{
    private readonly Lock _gate = new();
    private Channel<GrainOutput>[] _subscribers = [];

    public void Publish(GrainOutput output)
    {
        foreach (var subscriber in Volatile.Read(ref _subscribers))
        {
            subscriber.Writer.TryWrite(output);
        }
    }

    public async IAsyncEnumerable<GrainOutput> SubscribeAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateUnbounded<GrainOutput>(new UnboundedChannelOptions { SingleReader = true });
        lock (_gate)
        {
            _subscribers = [.. _subscribers, channel];
        }
        try
        {
            await foreach (var output in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return output;
            }
        }
        finally
        {
            lock (_gate)
            {
                _subscribers = _subscribers.Where(s => s != channel).ToArray();
            }
        }
    }
}
