using System.Net;

namespace Warden.Conformance.Fixture;

/// <summary>Loopback-only binding and DNS-rebinding protection (Host and Origin must name this machine).</summary>
internal static class LoopbackGuard
{
    public static string ValidateUrls(string urls)
    {
        foreach (string url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || !IsLoopbackHost(uri.Host))
            {
                throw new ArgumentException($"The conformance fixture binds loopback addresses only; '{url}' is not one.");
            }
        }

        return urls;
    }

    /// <summary>
    /// A page on evil.example.com whose name resolves to 127.0.0.1 reaches us with its own Host and Origin;
    /// answering 403 to those is what stops a browser from driving the server.
    /// </summary>
    public static async Task RejectForeignHostOrOrigin(HttpContext context, Func<Task> next)
    {
        string host = context.Request.Host.Host;
        string? origin = context.Request.Headers.Origin;
        bool originOk = string.IsNullOrEmpty(origin)
            || (Uri.TryCreate(origin, UriKind.Absolute, out var originUri) && IsLoopbackHost(originUri.Host));

        if (!IsLoopbackHost(host) || !originOk)
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
            await context.Response.WriteAsync("Host or Origin is not a loopback name.");
            return;
        }

        await next();
    }

    private static bool IsLoopbackHost(string host)
    {
        string h = host.Trim('[', ']');
        return string.Equals(h, "localhost", StringComparison.OrdinalIgnoreCase)
            || (IPAddress.TryParse(h, out var ip) && IPAddress.IsLoopback(ip));
    }
}
