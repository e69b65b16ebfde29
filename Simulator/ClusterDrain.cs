using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;

namespace Simulator;

/// <summary>
/// --wait-applied: after sending, polls <c>GET /api/v1/cluster</c> (operator key) until every partition's committed
/// checkpoint offset has reached the end of its log, so the run's readings are not only acknowledged but aggregated
/// and checkpointed. Returns the seconds from the start of the run until then, or null when it did not happen in time.
/// </summary>
public static class ClusterDrain
{
    public static async Task<double?> WaitAsync(Uri baseUrl, string operatorKey, long runStartTimestamp, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        client.DefaultRequestHeaders.Add("X-Api-Key", operatorKey);
        var cluster = new Uri(baseUrl, "/api/v1/cluster");
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            var polled = Stopwatch.GetTimestamp();
            using (var response = await client.GetAsync(cluster, cancellationToken).ConfigureAwait(false))
            {
                response.EnsureSuccessStatusCode();
                using var body = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
                var lag = body.RootElement.GetProperty("partitionMap").EnumerateArray().Sum(p => p.GetProperty("lag").GetInt64());
                if (lag == 0)
                {
                    // The poll that saw no lag was sent at `polled`: everything was applied by then.
                    return Stopwatch.GetElapsedTime(runStartTimestamp, polled).TotalSeconds;
                }
            }
            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
        return null;
    }
}
