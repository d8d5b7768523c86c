using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http;

namespace Warden.Web;

/// <summary>
/// Refuses every state-changing request authenticated by the session cookie that lacks a valid CSRF token in
/// <see cref="DashboardAuth.CsrfHeader"/>. Browsers attach cookies to requests other sites trigger; they do not
/// let those sites read the token or set the header. Bearer requests are untouched: no browser adds those.
/// </summary>
internal sealed class CsrfMiddleware(RequestDelegate next, IAntiforgery antiforgery)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var method = context.Request.Method;
        var safe = HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method) || HttpMethods.IsTrace(method);
        if (!safe && context.User.Identity is { IsAuthenticated: true, AuthenticationType: DashboardAuth.CookieScheme })
        {
            bool valid;
            try
            {
                valid = await antiforgery.IsRequestValidAsync(context).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is AntiforgeryValidationException or InvalidOperationException or BadHttpRequestException)
            {
                // A malformed token or body: fail closed.
                valid = false;
            }

            if (!valid)
            {
                await DashboardResponses.ErrorAsync(context, StatusCodes.Status403Forbidden, "csrf", $"a missing or invalid {DashboardAuth.CsrfHeader} header: reload the dashboard").ConfigureAwait(false);
                return;
            }
        }

        await next(context).ConfigureAwait(false);
    }
}
