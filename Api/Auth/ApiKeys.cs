using System.Security.Claims;
using System.Text.Encodings.Web;
using Api.Cluster;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Api.Auth;

/// <summary>Settings of section "Auth": the API keys and their roles.</summary>
public sealed class ApiKeyOptions
{
    public List<ApiKeyEntry> Keys { get; set; } = [];
}

public sealed class ApiKeyEntry
{
    /// <summary>The caller's name, unique among the keys: in logs, "acknowledged by", rate limits and Idempotency-Key scopes.</summary>
    public string Name { get; set; } = "";

    public string Key { get; set; } = "";

    /// <summary><c>device</c> (telemetry and its own commands) or <c>operator</c> (everything).</summary>
    public string Role { get; set; } = "";

    /// <summary>For device keys: the device ids this key may post for and read commands of. Empty: any device.</summary>
    public List<string> Devices { get; set; } = [];
}

/// <summary>
/// Finds the configured key a caller presented without telling, by the time it takes, how long a key is, how much of
/// it matched or which entry it is: the SHA-256 digest of the presented key is compared in fixed time with the digest
/// of every configured key (equal lengths, no early exit on a difference or on a match).
/// </summary>
internal static class ApiKeyMatch
{
    internal delegate bool DigestEquals(ReadOnlySpan<byte> configured, ReadOnlySpan<byte> presented);

    public static ApiKeyEntry? Find(IReadOnlyList<ApiKeyEntry> keys, string presented) =>
        Find(keys, presented, System.Security.Cryptography.CryptographicOperations.FixedTimeEquals);

    /// <param name="equals">The digest comparison (fixed-time; tests count the calls).</param>
    internal static ApiKeyEntry? Find(IReadOnlyList<ApiKeyEntry> keys, string presented, DigestEquals equals)
    {
        Span<byte> presentedDigest = stackalloc byte[System.Security.Cryptography.SHA256.HashSizeInBytes];
        Span<byte> configuredDigest = stackalloc byte[System.Security.Cryptography.SHA256.HashSizeInBytes];
        System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(presented), presentedDigest);
        ApiKeyEntry? found = null;
        for (var i = 0; i < keys.Count; i++)
        {
            System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(keys[i].Key), configuredDigest);
            var equal = equals(configuredDigest, presentedDigest);
            found = equal ? keys[i] : found;
        }

        return found;
    }
}

public static class Roles
{
    public const string Device = "device";
    public const string Operator = "operator";
    public const string DeviceClaim = "iot:device";
    public const string OperatorPolicy = "operator";
    public const string DevicePolicy = "device";

    /// <summary>True when the caller may act for this device: an operator, a fleet device key, or a key listing it.</summary>
    public static bool MayActFor(this ClaimsPrincipal user, string deviceId)
    {
        if (user.IsInRole(Operator))
        {
            return true;
        }
        var devices = user.FindAll(DeviceClaim).Select(c => c.Value).ToList();
        return devices.Count == 0 || devices.Contains(deviceId, StringComparer.Ordinal);
    }
}

/// <summary>
/// Authenticates a request by its API key: header <c>X-Api-Key</c>, <c>Authorization: Bearer</c>, or (for the
/// SignalR hub, where browsers cannot set headers on WebSockets) the <c>access_token</c> query parameter. Under the
/// Orleans Dashboard's path (<see cref="OrleansDashboardEndpoints.Path"/>), whose pages a browser loads without custom
/// headers, also HTTP Basic authentication with the key as the password (any user name); an unauthenticated request
/// there is challenged for Basic credentials, so that the browser asks for them.
/// </summary>
public sealed class ApiKeyHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    IOptionsMonitor<ApiKeyOptions> keys) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    /// <summary>The challenge under the Orleans Dashboard's path (RFC 7617): the browser asks for a user name and password.</summary>
    public const string BasicChallenge = "Basic realm=\"OrleansIot\", charset=\"UTF-8\"";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var presented = PresentedKey();
        if (string.IsNullOrEmpty(presented))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }
        var entry = ApiKeyMatch.Find(keys.CurrentValue.Keys, presented);
        if (entry is null)
        {
            return Task.FromResult(AuthenticateResult.Fail("invalid API key"));
        }
        var claims = new List<Claim> { new(ClaimTypes.Name, entry.Name), new(ClaimTypes.Role, entry.Role) };
        claims.AddRange(entry.Devices.Select(d => new Claim(Roles.DeviceClaim, d)));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName));
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName)));
    }

    private string? PresentedKey()
    {
        if (Request.Headers.TryGetValue("X-Api-Key", out var header) && header.Count > 0)
        {
            return header[0];
        }
        var authorization = Request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return authorization["Bearer ".Length..].Trim();
        }
        if (authorization.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase) && IsOrleansDashboard)
        {
            // Credentials that do not decode present an empty key: not authenticated, challenged again.
            return BasicPassword(authorization["Basic ".Length..].Trim()) ?? "";
        }
        if (Request.Path.StartsWithSegments("/hubs") && Request.Query.TryGetValue("access_token", out var token))
        {
            return token.ToString();
        }
        return null;
    }

    private bool IsOrleansDashboard => Request.Path.StartsWithSegments(OrleansDashboardEndpoints.Path, StringComparison.OrdinalIgnoreCase);

    /// <summary>The password of Basic credentials (base64 of "user:password", UTF-8), or null when they do not decode.</summary>
    private static string? BasicPassword(string credentials)
    {
        var bytes = new byte[credentials.Length];
        if (!Convert.TryFromBase64String(credentials, bytes, out var length))
        {
            return null;
        }
        string text;
        try
        {
            text = new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes, 0, length);
        }
        catch (System.Text.DecoderFallbackException)
        {
            return null;
        }
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? null : text[(colon + 1)..];
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        if (IsOrleansDashboard)
        {
            Response.Headers.WWWAuthenticate = BasicChallenge;
            return WriteProblemAsync(StatusCodes.Status401Unauthorized, "Unauthorized", PresentedKey() is null
                ? "An operator API key is required: give it as the password (any user name), or send it in the X-Api-Key header."
                : "The API key is not valid.");
        }
        return WriteProblemAsync(StatusCodes.Status401Unauthorized, "Unauthorized", PresentedKey() is null
            ? "An API key is required: send it in the X-Api-Key header."
            : "The API key is not valid.");
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        WriteProblemAsync(StatusCodes.Status403Forbidden, "Forbidden",
            $"This API key has the role '{Context.User.FindFirst(ClaimTypes.Role)?.Value}', which may not use {Request.Method} {Request.Path}.");

    private async Task WriteProblemAsync(int status, string title, string detail)
    {
        Response.StatusCode = status;
        await Context.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails = { Status = status, Title = title, Detail = detail },
        });
    }
}

public static class ApiKeyServiceCollectionExtensions
{
    public static IServiceCollection AddApiKeyAuth(this IServiceCollection services, IConfiguration configuration, IHostEnvironment environment)
    {
        services.AddOptions<ApiKeyOptions>()
            .Bind(configuration.GetSection("Auth"))
            .Validate(o => o.Keys.Count > 0 || environment.IsDevelopment(),
                "No API keys are configured (section Auth:Keys). Outside Development the Api refuses to start without keys.")
            .Validate(o => o.Keys.All(k => k.Role is Roles.Device or Roles.Operator),
                "Every Auth:Keys entry needs Role 'device' or 'operator'.")
            .Validate(o => o.Keys.All(k => k.Key.Length >= 16),
                "Every Auth:Keys entry needs a Key of at least 16 characters.")
            .Validate(o => o.Keys.Select(k => k.Key).Distinct(StringComparer.Ordinal).Count() == o.Keys.Count,
                "Auth:Keys contains the same key twice.")
            .Validate(o => o.Keys.All(k => k.Name.Length is > 0 and <= 64 && TextRules.Problem(k.Name) is null)
                    && o.Keys.Select(k => k.Name).Distinct(StringComparer.Ordinal).Count() == o.Keys.Count,
                "Every Auth:Keys entry needs a Name (1 to 64 characters, no control characters), unique among the keys: it names "
                + "the caller in logs, acknowledgements, rate limits and Idempotency-Key scopes.")
            .ValidateOnStart();
        services.AddAuthentication(ApiKeyHandler.SchemeName).AddScheme<AuthenticationSchemeOptions, ApiKeyHandler>(ApiKeyHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(Roles.OperatorPolicy, p => p.RequireRole(Roles.Operator))
            .AddPolicy(Roles.DevicePolicy, p => p.RequireRole(Roles.Device, Roles.Operator));
        return services;
    }
}
