using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Warden.Cli;

/// <summary>Where the CLI keeps a person's gateway URL and token: <c>~/.config/warden/credentials.json</c>, mode 0600.</summary>
internal sealed class SavedCredentials
{
    [JsonPropertyName("url")]
    public string? Url { get; set; }

    [JsonPropertyName("token")]
    public string? Token { get; set; }

    public static string FilePath =>
        Environment.GetEnvironmentVariable("WARDEN_CREDENTIALS")
        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config", "warden", "credentials.json");

    public static SavedCredentials Load()
    {
        try
        {
            return File.Exists(FilePath) ? JsonSerializer.Deserialize<SavedCredentials>(File.ReadAllText(FilePath)) ?? new() : new();
        }
        catch (JsonException)
        {
            return new();
        }
    }

    public void Save()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
        File.WriteAllText(FilePath, JsonSerializer.Serialize(this, new JsonSerializerOptions { WriteIndented = true }));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(FilePath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }
}

/// <summary>Calls the running gateway's <c>/api/v1</c> with the caller's token.</summary>
internal sealed class ApiClient : IDisposable
{
    private readonly HttpClient _http;

    public ApiClient(string? url, string? token)
    {
        var saved = SavedCredentials.Load();
        BaseUrl = (url ?? Environment.GetEnvironmentVariable("WARDEN_URL") ?? saved.Url ?? "http://127.0.0.1:8470").TrimEnd('/');
        Token = token ?? Environment.GetEnvironmentVariable("WARDEN_TOKEN") ?? saved.Token;
        _http = new HttpClient { BaseAddress = new Uri(BaseUrl + "/"), Timeout = TimeSpan.FromSeconds(30) };
        if (Token is not null)
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        }
    }

    public string BaseUrl { get; }

    public string? Token { get; }

    public async Task<JsonElement> SendAsync(HttpMethod method, string path, object? body = null, CancellationToken cancellationToken = default)
    {
        if (Token is null)
        {
            throw new CliException("no token: pass --token, set WARDEN_TOKEN, or run 'warden init' on the gateway's machine to save one", 2);
        }

        using var request = new HttpRequestMessage(method, "api/v1/" + path.TrimStart('/'));
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw new CliException($"no Warden gateway answers at {BaseUrl} ({ex.Message}); start one with 'warden serve' or pass --url", 3);
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CliException($"the gateway at {BaseUrl} did not answer within 30 s", 3);
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
            }

            var message = TryMessage(text) ?? response.ReasonPhrase ?? "error";
            throw response.StatusCode switch
            {
                HttpStatusCode.Unauthorized => new CliException($"the gateway refused the token: {message}", 4),
                HttpStatusCode.Forbidden => new CliException($"this token may not do that: {message}", 4),
                _ => new CliException($"{(int)response.StatusCode} {message}"),
            };
        }
    }

    private static string? TryMessage(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            return doc.RootElement.TryGetProperty("message", out var m) ? m.GetString() : null;
        }
        catch (JsonException)
        {
            return text.Length > 200 ? text[..200] : text;
        }
    }

    public void Dispose() => _http.Dispose();
}
