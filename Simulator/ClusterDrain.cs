using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;

namespace Simulator;

/// <summary>
/// --wait-applied: after sending, polls <c>GET /api/v1/cluster</c> (operator key) until every partition's reader has
/// applied its log to the end (its sensor grains aggregated every reading; they are written at the next checkpoint), so
/// the run's readings are not only acknowledged but aggregated. A partition whose reader does not answer is not done; a
/// 503 (the cluster did not answer in time, as under a saturating load) is asked again.
/// Returns the seconds from the start of the run until then, or null when it did not happen in time.
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
                if (response.StatusCode == System.Net.HttpStatusCode.ServiceUnavailable)
                {
                    await Task.Delay(200, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                response.EnsureSuccessStatusCode();
                using var body = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
                var done = body.RootElement.GetProperty("partitionMap").EnumerateArray().All(p =>
                    p.TryGetProperty("appliedOffset", out var applied) && p.TryGetProperty("endOffset", out var end) && applied.GetInt64() == end.GetInt64());
                if (done)
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
