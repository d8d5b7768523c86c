using System.Security.Claims;
using Microsoft.AspNetCore.Http;

namespace Warden.Web;

/// <summary>Turns a token typed at the sign-in form into an identity, or null when no principal holds it.</summary>
/// <param name="context">The sign-in request (its services, its abort token).</param>
/// <param name="token">The token as typed.</param>
/// <param name="authenticationType">The authentication type the identity must carry (the cookie scheme).</param>
public delegate ValueTask<ClaimsIdentity?> DashboardTokenResolver(HttpContext context, string token, string authenticationType);

/// <summary>Says whether a signed-in person still holds a valid credential (not revoked since sign-in).</summary>
/// <param name="context">The request.</param>
/// <param name="user">The person the session cookie names.</param>
public delegate ValueTask<bool> DashboardSessionValidator(HttpContext context, ClaimsPrincipal user);

/// <summary>How the host plugs its identities into the dashboard.</summary>
public sealed class DashboardOptions
{
    /// <summary>Resolves sign-in tokens. Required.</summary>
    public DashboardTokenResolver? ResolveToken { get; set; }

    /// <summary>Checked on every cookie request, so a revoked token ends its browser sessions too. Required.</summary>
    public DashboardSessionValidator? ValidateSession { get; set; }

    /// <summary>The scheme that handles <c>Authorization</c> headers; the dashboard never takes those over.</summary>
    public string BearerScheme { get; set; } = "Bearer";

    /// <summary>The claim holding the principal's kind (agent, operator, approver).</summary>
    public string KindClaimType { get; set; } = "kind";

    /// <summary>The claim holding the principal's name.</summary>
    public string NameClaimType { get; set; } = "name";

    /// <summary>The claim holding one group.</summary>
    public string GroupClaimType { get; set; } = "group";

    /// <summary>A session idle this long ends (each request slides it).</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>A session ends this long after sign-in, however active.</summary>
    public TimeSpan MaxLifetime { get; set; } = TimeSpan.FromHours(12);

    /// <summary>Principal kinds that may sign in. Agents never may.</summary>
    public IReadOnlyList<string> PersonKinds { get; set; } = ["operator", "approver"];
}
