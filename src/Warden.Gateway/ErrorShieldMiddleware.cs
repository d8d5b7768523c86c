using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Warden.Gateway;

/// <summary>
/// Turns anything that escapes a handler into a clear JSON error instead of a dropped connection, and
/// an oversized body into 413. Warden keeps serving whatever a request contains.
/// </summary>
internal sealed partial class ErrorShieldMiddleware(RequestDelegate next, ILogger<ErrorShieldMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch (BadHttpRequestException ex) when (!context.Response.HasStarted)
        {
            context.Response.StatusCode = ex.StatusCode;
            await context.Response.WriteAsJsonAsync(new { error = "bad_request", message = ex.Message }).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away.
        }
        catch (Exception ex) when (!context.Response.HasStarted)
        {
            LogUnhandled(logger, context.Request.Path, ex);
            context.Response.StatusCode = StatusCodes.Status500InternalServerError;
            await context.Response.WriteAsJsonAsync(new { error = "internal", message = "Warden could not handle this request; see its log" }).ConfigureAwait(false);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Unhandled error on {Path}")]
    private static partial void LogUnhandled(ILogger logger, string path, Exception ex);
}
