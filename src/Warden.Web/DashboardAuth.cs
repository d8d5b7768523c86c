namespace Warden.Web;

/// <summary>Names the dashboard's authentication uses; the host refers to them when it wires its schemes.</summary>
public static class DashboardAuth
{
    /// <summary>
    /// The default scheme of a host with the dashboard: it forwards to the bearer scheme whenever a request carries
    /// an <c>Authorization</c> header (or no session cookie), and to the cookie scheme otherwise, so bearer
    /// authentication behaves exactly as it did without the dashboard.
    /// </summary>
    public const string Scheme = "Warden";

    /// <summary>The cookie scheme of signed-in people.</summary>
    public const string CookieScheme = "WardenCookie";

    /// <summary>The session cookie's name.</summary>
    public const string CookieName = "warden_session";

    /// <summary>The header that carries the CSRF token on every state-changing request made with the cookie.</summary>
    public const string CsrfHeader = "X-Warden-CSRF";

    /// <summary>The antiforgery cookie's name.</summary>
    public const string CsrfCookieName = "warden_csrf";

    /// <summary>Where the dashboard lives.</summary>
    public const string BasePath = "/ui";

    /// <summary>The authentication property holding the sign-in time, for the absolute lifetime.</summary>
    internal const string SignedInItem = ".warden.signed_in";
}
