using Microsoft.AspNetCore.Http;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Warden.Core.Identity;
using Warden.Core.Storage;

namespace Warden.Gateway.Security;

/// <summary>Options of the bearer scheme.</summary>
public sealed class BearerOptions : AuthenticationSchemeOptions
{
    /// <summary>Requests without credentials on the MCP endpoint are made as this agent (loopback only).</summary>
    public string? AnonymousAgent { get; set; }

    /// <summary>The path of the MCP endpoint, where the anonymous agent applies.</summary>
    public string McpPath { get; set; } = "/mcp";
}

/// <summary>Authenticates <c>Authorization: Bearer TOKEN</c> against the principals in the store.</summary>
public sealed class BearerAuthenticationHandler(
    IOptionsMonitor<BearerOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    PrincipalDirectory directory) : AuthenticationHandler<BearerOptions>(options, logger, encoder)
{
    /// <inheritdoc />
    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string header = Request.Headers.Authorization.ToString();
        if (string.IsNullOrEmpty(header))
        {
            if (Options.AnonymousAgent is { } anonymous && Request.Path.StartsWithSegments(Options.McpPath, StringComparison.Ordinal))
            {
                return Success(new Principal(PrincipalKind.Agent, anonymous, [], DateTimeOffset.UnixEpoch));
            }

            return AuthenticateResult.NoResult();
        }

        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.Fail("expected a bearer token");
        }

        var token = header["Bearer ".Length..].Trim();
        if (token.Length is 0 or > 512)
        {
            return AuthenticateResult.Fail("malformed bearer token");
        }

        Principal? principal;
        try
        {
            principal = await directory.ResolveAsync(token, Context.RequestAborted).ConfigureAwait(false);
        }
        catch (StoreUnavailableException ex)
        {
            // Fail closed: without the store nobody can be authenticated.
            return AuthenticateResult.Fail("the store is unavailable: " + ex.Message);
        }

        return principal is null ? AuthenticateResult.Fail("unknown or revoked token") : Success(principal);
    }

    private AuthenticateResult Success(Principal principal) =>
        AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(WardenClaims.CreateIdentity(principal, Scheme.Name)), Scheme.Name));

    /// <inheritdoc />
    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer realm=\"warden\"";
        return Response.WriteAsJsonAsync(new { error = "unauthorized", message = "a valid bearer token is required (Authorization: Bearer TOKEN)" });
    }

    /// <inheritdoc />
    protected override Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status403Forbidden;
        return Response.WriteAsJsonAsync(new { error = "forbidden", message = "this credential may not do that" });
    }
}
