using Bench;

// dotnet bench/Bench/bin/Release/net10.0/Bench.dll <benchmark> [options]; each prints one JSON object.
return args.FirstOrDefault() switch
{
    "parse" => ParseBenchmark.Run(args[1..]),
    "query" => await QueryBenchmark.RunAsync(args[1..]),
    "memory" => MemoryBenchmark.Run(args[1..]),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("""
        usage: Bench parse [--seconds 2] [--runs 5]
                   System.Text.Json parse-only throughput of the simulator's payloads, next to the Api's telemetry parser
               Bench memory [--sensors 1000000] [--readings 10] [--interval-ms N] [--rules N]
                   managed memory per active sensor (5 metrics, the last 10 readings) with the runtime's bookkeeping
               Bench query --url URL --device-key K --operator-key K [--requests 1000]
                   latency of a 24-hour metrics query (1,440 points) of one sensor; run it against a fresh Api
        """);
    return 2;
}
