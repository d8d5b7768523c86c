using System.Net;
using Microsoft.AspNetCore.Http;

namespace Warden.Gateway.Security;

/// <summary>
/// Refuses requests whose Host or Origin is not this machine or an allowed name, before authentication or
/// any upstream sees them. A browser page on another site could otherwise reach a loopback gateway through
/// DNS rebinding and act with whatever credential the page can find.
/// </summary>
public sealed class HostOriginMiddleware(RequestDelegate next, IReadOnlyList<string> allowedHosts, IReadOnlyList<string> allowedOrigins)
{
    /// <summary>Handles one request.</summary>
    public Task InvokeAsync(HttpContext context)
    {
        var host = context.Request.Host.Host;
        if (!IsLoopbackName(host) && !allowedHosts.Contains(host, StringComparer.OrdinalIgnoreCase))
        {
            return Refuse(context, $"Host '{host}' is not allowed");
        }

        var origin = context.Request.Headers.Origin.ToString();
        if (origin.Length > 0 && !IsAllowedOrigin(origin))
        {
            return Refuse(context, $"Origin '{origin}' is not allowed");
        }

        return next(context);
    }

    private bool IsAllowedOrigin(string origin)
    {
        if (allowedOrigins.Contains(origin, StringComparer.OrdinalIgnoreCase))
        {
            return true;
        }

        return Uri.TryCreate(origin, UriKind.Absolute, out var uri)
            && (uri.Scheme == "http" || uri.Scheme == "https")
            && (IsLoopbackName(uri.Host) || allowedHosts.Contains(uri.Host, StringComparer.OrdinalIgnoreCase));
    }

    /// <summary>True for localhost and loopback IP literals.</summary>
    public static bool IsLoopbackName(string host)
    {
        host = host.Trim('[', ']');
        return host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
            || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));
    }

    private static Task Refuse(HttpContext context, string message)
    {
        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        return context.Response.WriteAsJsonAsync(new { error = "forbidden", message });
    }
}
