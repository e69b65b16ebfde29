namespace Api.Tests.Integration;

/// <summary>Fresh sensor and rule ids, so that tests sharing a host never see each other's data.</summary>
public static class Ids
{
    public static string New(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..12]}";
}
