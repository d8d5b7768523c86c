using System.Globalization;
using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Warden.Web;

/// <summary>Adds the dashboard to a host: <c>services.AddWardenDashboard(...)</c>, then <c>app.MapWardenDashboard()</c>.</summary>
public static class DashboardExtensions
{
    private const int MaxLoginBytes = 4096;

    /// <summary>
    /// Registers the cookie scheme for people, the forwarding default scheme <see cref="DashboardAuth.Scheme"/>
    /// (the host passes it to <c>AddAuthentication</c>), antiforgery and the embedded files.
    /// </summary>
    public static AuthenticationBuilder AddWardenDashboard(this IServiceCollection services, Action<DashboardOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        var options = new DashboardOptions();
        configure(options);
        if (options.ResolveToken is null || options.ValidateSession is null)
        {
            throw new InvalidOperationException("the dashboard needs ResolveToken and ValidateSession");
        }

        services.AddSingleton(options);
        services.AddSingleton<DashboardAssets>();
        services.AddAntiforgery(o =>
        {
            o.HeaderName = DashboardAuth.CsrfHeader;
            o.Cookie.Name = DashboardAuth.CsrfCookieName;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.Cookie.HttpOnly = true;
            o.Cookie.Path = "/";
        });

        return services.AddAuthentication()
            .AddPolicyScheme(DashboardAuth.Scheme, "Warden (bearer token or dashboard session)", o =>
            {
                o.ForwardDefaultSelector = context =>
                    context.Request.Headers.Authorization.Count > 0 || !context.Request.Cookies.ContainsKey(DashboardAuth.CookieName)
                        ? options.BearerScheme
                        : DashboardAuth.CookieScheme;
            })
            .AddCookie(DashboardAuth.CookieScheme, o =>
            {
                o.Cookie.Name = DashboardAuth.CookieName;
                o.Cookie.HttpOnly = true;
                o.Cookie.SameSite = SameSiteMode.Strict;
                // Secure whenever the page came over HTTPS (directly or through a proxy that sets the scheme).
                o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                o.Cookie.Path = "/";
                o.ExpireTimeSpan = options.IdleTimeout;
                o.SlidingExpiration = true;
                o.Events.OnRedirectToLogin = c => DashboardResponses.ErrorAsync(c.HttpContext, StatusCodes.Status401Unauthorized, "unauthorized", "the dashboard session ended: sign in again");
                o.Events.OnRedirectToAccessDenied = c => DashboardResponses.ErrorAsync(c.HttpContext, StatusCodes.Status403Forbidden, "forbidden", "this account may not do that");
                o.Events.OnValidatePrincipal = async c =>
                {
                    var time = c.HttpContext.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System;
                    var fresh = c.Properties.Items.TryGetValue(DashboardAuth.SignedInItem, out var at)
                        && DateTimeOffset.TryParse(at, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var signedIn)
                        && time.GetUtcNow() - signedIn < options.MaxLifetime;
                    if (!fresh || c.Principal is null || !await options.ValidateSession!(c.HttpContext, c.Principal).ConfigureAwait(false))
                    {
                        c.RejectPrincipal();
                        await c.HttpContext.SignOutAsync(DashboardAuth.CookieScheme).ConfigureAwait(false);
                    }
                };
            });
    }

    /// <summary>
    /// Maps the dashboard under <c>/ui</c> and adds the CSRF check for cookie requests. Call after
    /// <c>UseAuthentication</c>/<c>UseAuthorization</c> and before the API is mapped.
    /// </summary>
    public static WebApplication MapWardenDashboard(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.UseMiddleware<CsrfMiddleware>();
        var ui = app.MapGroup(DashboardAuth.BasePath).AllowAnonymous().ExcludeFromDescription();
        // Routing treats "/ui" and "/ui/" alike: one endpoint, which sends the first to the second.
        ui.MapGet("/", (HttpContext c, DashboardAssets assets) =>
        {
            if (!c.Request.Path.Value!.EndsWith('/'))
            {
                c.Response.Redirect(DashboardAuth.BasePath + "/");
                return Task.CompletedTask;
            }

            return assets.ServeAsync(c, "index.html");
        });
        ui.MapGet("/assets/{name}", (HttpContext c, string name, DashboardAssets assets) => assets.ServeAsync(c, name));
        ui.MapGet("/session", (HttpContext c, IAntiforgery antiforgery, DashboardOptions options) =>
        {
            DashboardAssets.SecurityHeaders(c.Response);
            var tokens = antiforgery.GetAndStoreTokens(c);
            return DashboardResponses.SessionAsync(c, options, c.User, tokens.RequestToken);
        });
        ui.MapPost("/login", LoginAsync);
        ui.MapPost("/logout", async (HttpContext c) =>
        {
            // The CSRF middleware has checked a signed-in caller; signing out an expired session needs no check.
            await c.SignOutAsync(DashboardAuth.CookieScheme).ConfigureAwait(false);
            c.Response.StatusCode = StatusCodes.Status204NoContent;
        });
        return app;
    }

    private static async Task LoginAsync(HttpContext context, IAntiforgery antiforgery, DashboardOptions options)
    {
        DashboardAssets.SecurityHeaders(context.Response);

        // The sign-in form is protected too: otherwise another site could sign a browser in as someone else.
        if (!await IsValidAsync(antiforgery, context).ConfigureAwait(false))
        {
            await DashboardResponses.ErrorAsync(context, StatusCodes.Status403Forbidden, "csrf", $"a missing or invalid {DashboardAuth.CsrfHeader} header: reload the page").ConfigureAwait(false);
            return;
        }

        var token = await ReadTokenAsync(context).ConfigureAwait(false);
        if (token is null)
        {
            await DashboardResponses.ErrorAsync(context, StatusCodes.Status400BadRequest, "invalid_request", "send {\"token\": \"...\"}").ConfigureAwait(false);
            return;
        }

        var identity = await options.ResolveToken!(context, token, DashboardAuth.CookieScheme).ConfigureAwait(false);
        if (identity is null)
        {
            await DashboardResponses.ErrorAsync(context, StatusCodes.Status401Unauthorized, "unauthorized", "unknown or revoked token").ConfigureAwait(false);
            return;
        }

        var kind = identity.FindFirst(options.KindClaimType)?.Value;
        if (kind is null || !options.PersonKinds.Contains(kind, StringComparer.Ordinal))
        {
            await DashboardResponses.ErrorAsync(context, StatusCodes.Status403Forbidden, "forbidden", $"a {kind ?? "unknown"} token cannot sign in: the dashboard is for operators and approvers").ConfigureAwait(false);
            return;
        }

        var now = (context.RequestServices.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow();
        var properties = new AuthenticationProperties { IsPersistent = false, AllowRefresh = true };
        properties.Items[DashboardAuth.SignedInItem] = now.ToString("O", CultureInfo.InvariantCulture);
        var principal = new ClaimsPrincipal(identity);
        await context.SignInAsync(DashboardAuth.CookieScheme, principal, properties).ConfigureAwait(false);

        // CSRF tokens are bound to the identity: hand out one for the person now signed in.
        context.User = principal;
        var tokens = antiforgery.GetAndStoreTokens(context);
        await DashboardResponses.SessionAsync(context, options, principal, tokens.RequestToken).ConfigureAwait(false);
    }

    private static async Task<bool> IsValidAsync(IAntiforgery antiforgery, HttpContext context)
    {
        try
        {
            return await antiforgery.IsRequestValidAsync(context).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is AntiforgeryValidationException or InvalidOperationException or BadHttpRequestException)
        {
            return false;
        }
    }

    private static async Task<string?> ReadTokenAsync(HttpContext context)
    {
        if (context.Request.ContentLength is > MaxLoginBytes)
        {
            return null;
        }

        try
        {
            using var body = new MemoryStream();
            var buffer = new byte[1024];
            int n;
            while ((n = await context.Request.Body.ReadAsync(buffer, context.RequestAborted).ConfigureAwait(false)) > 0)
            {
                if (body.Length + n > MaxLoginBytes)
                {
                    return null;
                }

                body.Write(buffer, 0, n);
            }

            using var doc = JsonDocument.Parse(body.ToArray());
            if (doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("token", out var t)
                && t.ValueKind == JsonValueKind.String
                && t.GetString()!.Trim() is { Length: > 0 and <= 512 } token)
            {
                return token;
            }
        }
        catch (JsonException)
        {
        }

        return null;
    }
}
