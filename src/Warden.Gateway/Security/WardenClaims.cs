using System.Security.Claims;
using Warden.Core.Identity;

namespace Warden.Gateway.Security;

/// <summary>Claim types Warden puts on authenticated principals.</summary>
public static class WardenClaims
{
    /// <summary>The principal's name.</summary>
    public const string Name = "warden:name";

    /// <summary>agent, operator or approver.</summary>
    public const string Kind = "warden:kind";

    /// <summary>One claim per group.</summary>
    public const string Group = "warden:group";

    /// <summary>The authentication scheme for bearer tokens.</summary>
    public const string Scheme = "WardenBearer";

    /// <summary>
    /// On dashboard sessions only: the SHA-256 of the token the person signed in with, so every request can check
    /// the token is still valid (a revoked approver's browser session ends with the token).
    /// </summary>
    public const string TokenHash = "warden:token_sha256";

    /// <summary>The identity of a principal: the same claims whether it came with a bearer token or a session cookie.</summary>
    public static ClaimsIdentity CreateIdentity(Principal principal, string authenticationType)
    {
        ArgumentNullException.ThrowIfNull(principal);
        var kind = principal.Kind.ToString().ToLowerInvariant();
        var claims = new List<Claim>
        {
            // The SDK binds a stateful MCP session to this claim and refuses requests from anyone else.
            new(ClaimTypes.NameIdentifier, kind + ":" + principal.Name),
            new(Name, principal.Name),
            new(Kind, kind),
        };
        claims.AddRange(principal.Groups.Select(g => new Claim(Group, g)));
        return new ClaimsIdentity(claims, authenticationType, Name, Kind);
    }
}
