using System.Collections.Concurrent;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Warden.Gateway.Tests.Infrastructure;

/// <summary>A real HTTP receiver on loopback for webhook tests: records deliveries, checks signatures, fails on demand.</summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    public const string Secret = "test-webhook-secret-0123456789";

    private readonly WebApplication _app;
    private int _toFail;
    private int _failures;

    private WebhookReceiver(WebApplication app, int failFirst)
    {
        _app = app;
        _toFail = failFirst;
    }

    public sealed record Delivery(string Event, string Body, bool SignatureValid, int Attempt);

    public ConcurrentQueue<Delivery> Received { get; } = new();

    public int Failures => Volatile.Read(ref _failures);

    public string Url { get; private set; } = "";

    public static async Task<WebhookReceiver> StartAsync(int failFirst = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseSetting("urls", "http://127.0.0.1:0");
        var app = builder.Build();
        var receiver = new WebhookReceiver(app, failFirst);
        app.MapPost("/hook", async (HttpContext http) =>
        {
            using var reader = new StreamReader(http.Request.Body, Encoding.UTF8);
            var body = await reader.ReadToEndAsync();
            if (Interlocked.Decrement(ref receiver._toFail) >= 0)
            {
                Interlocked.Increment(ref receiver._failures);
                return Results.StatusCode(503);
            }

            var timestamp = long.Parse(http.Request.Headers["X-Warden-Timestamp"].ToString(), System.Globalization.CultureInfo.InvariantCulture);
            var expected = Webhooks.WebhookDispatcher.Sign(Encoding.UTF8.GetBytes(Secret), timestamp, Encoding.UTF8.GetBytes(body));
            var valid = string.Equals(expected, http.Request.Headers["X-Warden-Signature"].ToString(), StringComparison.Ordinal);
            receiver.Received.Enqueue(new Delivery(http.Request.Headers["X-Warden-Event"].ToString(), body, valid, int.Parse(http.Request.Headers["X-Warden-Attempt"].ToString(), System.Globalization.CultureInfo.InvariantCulture)));
            return Results.Ok();
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        receiver.Url = address.TrimEnd('/') + "/hook";
        return receiver;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
