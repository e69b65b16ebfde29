using Bench;

// Benchmarks of OrleansIot, one per subcommand: dotnet run -c Release --project bench/Bench -- <subcommand> [options]
switch (args.Length > 0 ? args[0] : "")
{
    case "memory":
        return MemoryBenchmark.Run(args[1..]);
    default:
        Console.Error.WriteLine("usage: Bench <subcommand> [options]");
        Console.Error.WriteLine("  memory [--sensors N] [--readings N] [--interval-ms N] [--rules N]   managed memory per active sensor");
        return 2;
}
