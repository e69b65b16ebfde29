using Bench;

// dotnet bench/Bench/bin/Release/net10.0/Bench.dll <benchmark> [options]; each prints one JSON object on standard output.
return args.FirstOrDefault() switch
{
    "parse" => ParseBenchmark.Run(args[1..]),
    "query" => await QueryBenchmark.RunAsync(args[1..]),
    "memory" => await MemoryBenchmark.RunAsync(args[1..]),
    "offline" => await OfflineBenchmark.RunAsync(args[1..]),
    "calls" => await CallsBenchmark.RunAsync(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("""
        usage: Bench parse [--seconds 2] [--runs 5]
                   System.Text.Json parse-only throughput of the simulator's payloads, next to the Api's telemetry parser
               Bench memory [--sensors 200000] [--activations 100000] [--readings 10] [--interval-ms 6000] [--rules 0]
                            [--idle-seconds 5] [--in-flight 1000]
                   grain state per sensor (SensorLogic fed the readings; 0 sensors skips it), then an Orleans silo in
                   process: memory per sensor grain activation, Orleans' overhead (activation minus state), and what
                   idle collection releases (0 activations skips it)
               Bench offline [--sensors 200000] [--partitions 8] [--batch 500] [--idle-seconds 5] [--minutes 5]
                   an idle fleet through the in-memory log, deactivated by Orleans; then one offline rule for all of
                   them: time until every partition applied it, sensor activations after it, memory
               Bench calls [--grains 10000] [--in-flight 1000] [--warmup-seconds 2] [--seconds 3] [--runs 3]
                           [--one-way-window 10000]
                   raw Orleans rate of awaited (and one-way) calls to grains that only answer, one silo in process
               Bench query --url URL --device-key K --operator-key K [--requests 1000]
                   latency of a 24-hour metrics query (1,440 points) of one sensor; run it against a fresh Api
        """);
    return 2;
}
