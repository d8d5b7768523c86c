using System.Security.Claims;
using Microsoft.AspNetCore.Http;
using Warden.Core.Audit;
using Warden.Gateway.Security;

namespace Warden.Gateway.Audit;

/// <summary>
/// Records every state-changing API request an operator or approver makes (<c>admin.request</c>: who, method,
/// path, status), so administration is attributed to a person in the chain. What changed is recorded separately
/// from the change feed (<c>principal.added</c>, <c>policy.loaded</c>, ...).
/// </summary>
internal sealed class AuditMiddleware(RequestDelegate next, AuditLog audit)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var method = context.Request.Method;
        if (HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method) || !context.Request.Path.StartsWithSegments("/api/v1", StringComparison.Ordinal))
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            var kind = context.User.FindFirstValue(WardenClaims.Kind);
            if (kind is "operator" or "approver")
            {
                var path = context.Request.Path.Value ?? "";
                var status = context.Response.StatusCode;
                audit.Record(new AuditEvent
                {
                    Kind = AuditKinds.AdminRequest,
                    Actor = kind + ":" + context.User.FindFirstValue(WardenClaims.Name),
                    Detail = AuditLog.Json(w =>
                    {
                        w.WriteString("method", method);
                        w.WriteString("path", path);
                        w.WriteNumber("status", status);
                    }),
                });
            }
        }
    }
}
