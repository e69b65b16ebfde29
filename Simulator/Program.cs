using System.CommandLine;
using System.Text.Json;
using Simulator;

var url = new Option<string>("--url") { Description = "Base URL of the Api (a loopback address unless --allow-remote)", DefaultValueFactory = _ => "http://127.0.0.1:5080" };
var key = new Option<string>("--key") { Description = "Device API key, sent as X-Api-Key", DefaultValueFactory = _ => "dev-device-key-change-me" };
var sensors = new Option<int>("--sensors") { Description = "Number of sensors (ids {location}-{nn})", DefaultValueFactory = _ => 100 };
var format = new Option<string>("--format") { Description = "Payload format", DefaultValueFactory = _ => "slide" };
format.AcceptOnlyFromAmong("slide", "engine", "serial");
var batch = new Option<int>("--batch") { Description = "Readings per request: 1 sends one object, more a JSON array", DefaultValueFactory = _ => 1 };
var ndJson = new Option<bool>("--ndjson") { Description = "Send NDJSON (application/x-ndjson) instead of JSON" };
var ratePerSensor = new Option<double?>("--rate-per-sensor") { Description = "Readings per second per sensor (open loop; default 1 when no --total-rate)" };
var totalRate = new Option<double?>("--total-rate") { Description = "Open-loop readings per second over the fleet; 0 = as fast as possible (saturation)" };
var duration = new Option<TimeSpan?>("--duration")
{
    Description = "How long to send, e.g. 30s, 5m (default 30s; at most 1h with --count alone)",
    CustomParser = result => ParseDuration(result, "--duration"),
};
var count = new Option<long?>("--count") { Description = "Total readings to send" };
var concurrency = new Option<int>("--concurrency") { Description = "Requests in flight at most (and connections)", DefaultValueFactory = _ => 16 };
var anomalies = new Option<string>("--anomalies") { Description = "none, or typical: overheating (temperature > 35), silent sensors (offline) and humidity spikes", DefaultValueFactory = _ => "none" };
anomalies.AcceptOnlyFromAmong("none", "typical");
var seed = new Option<int>("--seed") { Description = "Seed of the value model", DefaultValueFactory = _ => 1 };
var summary = new Option<FileInfo?>("--summary") { Description = "Also write the JSON summary to this file" };
var quiet = new Option<bool>("--quiet") { Description = "No live view: only the JSON summary at the end (also when output is redirected)" };
var maxRetries = new Option<int>("--max-retries") { Description = "Resends of a request after 503 or 429 (waiting its Retry-After)", DefaultValueFactory = _ => 10 };
var allowRemote = new Option<bool>("--allow-remote") { Description = "Allow a --url that is not a loopback address" };
var operatorKey = new Option<string?>("--operator-key") { Description = "Operator API key, for --wait-applied and --alert-probe" };
var waitApplied = new Option<bool>("--wait-applied") { Description = "After sending, wait until every partition has applied all readings and report the applied rate (needs --operator-key)" };
var alertProbe = new Option<int?>("--alert-probe") { Description = "Send no load: create a probe rule and measure post-to-SignalR-alert latency over this many samples (needs --operator-key); with --duration, no sample starts after that time" };
var probeInterval = new Option<TimeSpan?>("--probe-interval")
{
    Description = "Pause between probe samples (default 100ms)",
    CustomParser = result => ParseDuration(result, "--probe-interval"),
};
var transport = new Option<string>("--transport") { Description = "http (POST /api/v1/telemetry) or mqtt (one MQTT connection per sensor)", DefaultValueFactory = _ => "http" };
var mqttUrl = new Option<string>("--mqtt-url") { Description = "The Api's MQTT endpoint, for --transport mqtt", DefaultValueFactory = _ => "mqtt://127.0.0.1:1883" };
var mqttVersion = new Option<string>("--mqtt-version") { Description = "MQTT version for --transport mqtt: 5 or 3.1.1", DefaultValueFactory = _ => "5" };
var dryRun = new Option<bool>("--dry-run") { Description = "Only generate the payloads on one thread and report readings/s (no HTTP)" };

var root = new RootCommand("OrleansIot device fleet simulator: N sensors posting telemetry to the Api")
{
    url, key, sensors, format, batch, ndJson, ratePerSensor, totalRate, duration, count, concurrency, anomalies, seed,
    summary, quiet, maxRetries, allowRemote, operatorKey, waitApplied, alertProbe, probeInterval, transport, mqttUrl, mqttVersion, dryRun,
};
root.SetAction(async (parse, cancellationToken) =>
{
    var perSensor = parse.GetValue(ratePerSensor);
    var total = parse.GetValue(totalRate);
    var readings = parse.GetValue(count);
    var problems = new List<string>();
    if (perSensor is not null && total is not null)
    {
        problems.Add("give --rate-per-sensor or --total-rate, not both");
    }
    if (perSensor is <= 0 || (perSensor is { } p && !double.IsFinite(p)))
    {
        problems.Add("--rate-per-sensor must be more than 0");
    }
    if (!Uri.TryCreate(parse.GetValue(url), UriKind.Absolute, out var baseUrl))
    {
        problems.Add($"--url '{parse.GetValue(url)}' is not an absolute URL");
        baseUrl = new Uri("http://127.0.0.1:5080");
    }
    if (parse.GetValue(transport) is not ("http" or "mqtt"))
    {
        problems.Add($"--transport must be http or mqtt, not '{parse.GetValue(transport)}'");
    }
    if (!Uri.TryCreate(parse.GetValue(mqttUrl), UriKind.Absolute, out var mqttUri))
    {
        problems.Add($"--mqtt-url '{parse.GetValue(mqttUrl)}' is not an absolute URL");
        mqttUri = new Uri("mqtt://127.0.0.1:1883");
    }
    var fleet = parse.GetValue(sensors);
    var settings = new SimulatorSettings
    {
        Url = baseUrl,
        Transport = parse.GetValue(transport) == "mqtt" ? Transport.Mqtt : Transport.Http,
        MqttUrl = mqttUri,
        MqttVersion = parse.GetValue(mqttVersion) ?? "5",
        Key = parse.GetValue(key) ?? "",
        Sensors = fleet,
        Format = Enum.Parse<PayloadFormat>(parse.GetValue(format) ?? "slide", ignoreCase: true),
        Batch = parse.GetValue(batch),
        NdJson = parse.GetValue(ndJson),
        TotalRate = total ?? (perSensor ?? 1) * fleet,
        Duration = parse.GetValue(duration) ?? (readings is null ? TimeSpan.FromSeconds(30) : TimeSpan.FromHours(1)),
        Count = readings,
        Concurrency = parse.GetValue(concurrency),
        Anomalies = parse.GetValue(anomalies) == "typical" ? AnomalyOptions.Typical : AnomalyOptions.None,
        Seed = parse.GetValue(seed),
        MaxRetries = parse.GetValue(maxRetries),
        AllowRemote = parse.GetValue(allowRemote),
    };
    problems.AddRange(settings.Validate());
    var opKey = parse.GetValue(operatorKey);
    if ((parse.GetValue(waitApplied) || parse.GetValue(alertProbe) is not null) && string.IsNullOrEmpty(opKey))
    {
        problems.Add("--wait-applied and --alert-probe need --operator-key");
    }
    if (parse.GetValue(alertProbe) is < 2 or > 100_000)
    {
        problems.Add("--alert-probe must be between 2 and 100000 samples");
    }
    if (problems.Count > 0)
    {
        foreach (var problem in problems)
        {
            Console.Error.WriteLine($"simulator: {problem}");
        }
        return 2;
    }

    if (parse.GetValue(dryRun))
    {
        Console.WriteLine(GeneratorBenchmark.Run(settings, cancellationToken));
        return 0;
    }

    if (parse.GetValue(alertProbe) is { } probeSamples)
    {
        var probe = new AlertProbe(settings.Url, settings.Key, opKey!, probeSamples, parse.GetValue(probeInterval) ?? TimeSpan.FromMilliseconds(100),
            parse.GetValue(duration));
        var probed = await probe.RunAsync(cancellationToken);
        var probeJson = JsonSerializer.Serialize(probed, SummaryJsonContext.Default.ProbeSummary);
        Console.WriteLine(probeJson);
        if (parse.GetValue(summary) is { } probeFile)
        {
            await File.WriteAllTextAsync(probeFile.FullName, probeJson + Environment.NewLine, CancellationToken.None);
        }
        return probed.Samples > 0 ? 0 : 1;
    }

    using var engine = new SimulatorEngine(settings);
    var started = System.Diagnostics.Stopwatch.GetTimestamp();
    var run = engine.RunAsync(cancellationToken);
    if (!parse.GetValue(quiet) && !Console.IsOutputRedirected)
    {
        await LiveView.ShowAsync(engine, settings, run);
    }
    var result = await run;
    if (parse.GetValue(waitApplied) && await ClusterDrain.WaitAsync(settings.Url, opKey!, started, TimeSpan.FromMinutes(5), cancellationToken) is { } applied)
    {
        result = result with { AppliedSeconds = Math.Round(applied, 3), AppliedReadingsPerSecond = Math.Round(result.Acknowledged / applied, 1) };
    }
    var json = JsonSerializer.Serialize(result, SummaryJsonContext.Default.SimulatorSummary);
    Console.WriteLine(json);
    if (parse.GetValue(summary) is { } file)
    {
        await File.WriteAllTextAsync(file.FullName, json + Environment.NewLine, CancellationToken.None);
    }
    return result.Sent > 0 && result.Acknowledged == 0 ? 1 : 0;
});

return await root.Parse(args).InvokeAsync(
    new InvocationConfiguration { ProcessTerminationTimeout = new SimulatorSettings().DrainTimeout + TimeSpan.FromSeconds(5) });

static TimeSpan? ParseDuration(System.CommandLine.Parsing.ArgumentResult result, string option)
{
    if (SimulatorSettings.TryParseDuration(result.Tokens[0].Value, out var value))
    {
        return value;
    }
    result.AddError($"{option}: '{result.Tokens[0].Value}' is not a duration such as 500ms, 30s, 5m or 1h");
    return null;
}
