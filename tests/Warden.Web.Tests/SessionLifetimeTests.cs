using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Warden.Core.Identity;
using Warden.Gateway;
using Warden.Gateway.Configuration;

namespace Warden.Web.Tests;

/// <summary>
/// Session expiry on the gateway's clock (a fake one): idle sessions end, active ones slide, and none outlives
/// the absolute lifetime. Plain HTTP with a cookie jar, as a browser would keep it; no upstream is needed.
/// </summary>
public sealed class SessionLifetimeTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 8, 0, 0, TimeSpan.Zero));
    private string _root = "";
    private string _operatorToken = "";
    private WebApplication _app = null!;

    public async Task InitializeAsync()
    {
        _root = Directory.CreateTempSubdirectory("warden-web-session-").FullName;
        Directory.CreateDirectory(Path.Combine(_root, "policy"));
        await File.WriteAllTextAsync(Path.Combine(_root, "policy", "policy.yaml"), "version: 1\ndefault: deny\nrules: []\n");
        var path = Path.Combine(_root, "warden.yaml");
        await File.WriteAllTextAsync(path, "listen: 127.0.0.1:8470\ndata_dir: ./data\nstore: sqlite\npolicy: ./policy/\n");
        var config = ConfigLoader.Parse(await File.ReadAllTextAsync(path), path, _root);
        await using (var store = StoreFactory.Create(config, TimeProvider.System))
        {
            await store.InitializeAsync();
            _operatorToken = Tokens.Create(PrincipalKind.Operator);
            Assert.True(await store.AddPrincipalAsync(new Principal(PrincipalKind.Operator, "ops", [], DateTimeOffset.UtcNow), Tokens.Hash(_operatorToken)));
        }

        _app = GatewayHost.Build(config, new GatewayOptions { Listen = "127.0.0.1:0", Time = _time, LogLevel = LogLevel.Warning });
        await _app.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task<HttpClient> SignInAsync()
    {
        var http = new HttpClient(new HttpClientHandler { CookieContainer = new CookieContainer() }) { BaseAddress = new Uri(_app.Urls.First()) };
        var session = (await http.GetFromJsonAsync<JsonNode>("/ui/session"))!;
        using var login = new HttpRequestMessage(HttpMethod.Post, "/ui/login") { Content = JsonContent.Create(new { token = _operatorToken }) };
        login.Headers.Add("X-Warden-CSRF", session["csrf"]!.GetValue<string>());
        using var response = await http.SendAsync(login);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return http;
    }

    private static async Task<HttpStatusCode> WhoAmIAsync(HttpClient http)
    {
        using var response = await http.GetAsync("/api/v1/whoami");
        return response.StatusCode;
    }

    [Fact]
    public async Task Session_IdleLongerThanTheTimeout_Ends()
    {
        using var http = await SignInAsync();
        Assert.Equal(HttpStatusCode.OK, await WhoAmIAsync(http));
        _time.Advance(TimeSpan.FromMinutes(31));
        Assert.Equal(HttpStatusCode.Unauthorized, await WhoAmIAsync(http));
    }

    [Fact]
    public async Task Session_InUse_SlidesButEndsAtTheAbsoluteLifetime()
    {
        using var http = await SignInAsync();

        // A request every 20 minutes keeps it alive well past the 30-minute idle timeout...
        for (var i = 0; i < 6; i++)
        {
            _time.Advance(TimeSpan.FromMinutes(20));
            Assert.Equal(HttpStatusCode.OK, await WhoAmIAsync(http));
        }

        // ...but not past 12 hours from sign-in.
        for (var elapsed = TimeSpan.FromHours(2); elapsed < TimeSpan.FromHours(12) - TimeSpan.FromMinutes(20); elapsed += TimeSpan.FromMinutes(20))
        {
            _time.Advance(TimeSpan.FromMinutes(20));
            Assert.Equal(HttpStatusCode.OK, await WhoAmIAsync(http));
        }

        _time.Advance(TimeSpan.FromMinutes(25));
        Assert.Equal(HttpStatusCode.Unauthorized, await WhoAmIAsync(http));
    }
}
