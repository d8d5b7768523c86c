using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Warden.Web;

/// <summary>JSON answers written by hand: the dashboard must not depend on the host's serializer setup.</summary>
internal static class DashboardResponses
{
    public static async Task ErrorAsync(HttpContext context, int status, string error, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        await WriteAsync(context, w =>
        {
            w.WriteString("error", error);
            w.WriteString("message", message);
        }).ConfigureAwait(false);
    }

    public static Task SessionAsync(HttpContext context, DashboardOptions options, ClaimsPrincipal user, string? csrf)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        return WriteAsync(context, w =>
        {
            var signedIn = user.Identity is { IsAuthenticated: true };
            w.WriteBoolean("authenticated", signedIn);
            if (signedIn)
            {
                w.WriteString("kind", user.FindFirst(options.KindClaimType)?.Value);
                w.WriteString("name", user.FindFirst(options.NameClaimType)?.Value);
                w.WriteStartArray("groups");
                foreach (var g in user.FindAll(options.GroupClaimType))
                {
                    w.WriteStringValue(g.Value);
                }

                w.WriteEndArray();
                w.WriteString("via", user.Identity!.AuthenticationType == DashboardAuth.CookieScheme ? "cookie" : "bearer");
            }

            w.WriteString("csrf", csrf);
            w.WriteString("csrf_header", DashboardAuth.CsrfHeader);
        });
    }

    private static async Task WriteAsync(HttpContext context, Action<Utf8JsonWriter> body)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }

        buffer.Position = 0;
        await buffer.CopyToAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
    }
}
