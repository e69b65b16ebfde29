namespace Runtime;

/// <summary>
/// The inbox log cannot take writes now (broker down, blocked, a negative confirm, no confirm in time).
/// Nothing of the failed append may be taken as acknowledged; the caller answers 503 with Retry-After, or retries.
/// </summary>
public sealed class LogUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
