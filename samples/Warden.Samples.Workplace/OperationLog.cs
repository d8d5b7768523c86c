using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Warden.Samples.Workplace;

/// <summary>
/// Append-only JSON-lines record of every tool call the server handled. Tests replaying incidents read it to
/// learn what really happened on the server side, and match lines to the gateway's audit through
/// <c>_meta["warden/seq"]</c>.
/// </summary>
public sealed class OperationLog : IDisposable
{
    public const string MetaPrefix = "warden/";
    public const string SeqKey = "warden/seq";

    private static readonly AsyncLocal<OperationNote?> CurrentNote = new();

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly FileStream _stream;

    public OperationLog(string path)
    {
        Path = path;
        // Kept open for the process lifetime; FileShare.Read lets tests read while the server appends.
        _stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
    }

    public string Path { get; }

    /// <summary>
    /// Lets the running tool attach a result summary to its log line. The filter creates the note before calling
    /// the tool; the tool mutates it in place, because values set in an AsyncLocal do not flow back to the caller.
    /// </summary>
    public static void Note(string key, JsonNode? value)
    {
        if (CurrentNote.Value is { } note)
        {
            note.Detail[key] = value;
        }
    }

    /// <summary>A call-tool filter that logs each call after it finishes and before its result is sent.</summary>
    public static McpRequestFilter<CallToolRequestParams, CallToolResult> Filter(OperationLog log) => next => async (context, ct) =>
    {
        var note = new OperationNote();
        CurrentNote.Value = note;
        string outcome = "ok";
        string? error = null;
        try
        {
            var result = await next(context, ct);
            if (result.IsError == true)
            {
                outcome = "error";
                error = result.Content.OfType<TextContentBlock>().FirstOrDefault()?.Text;
            }

            return result;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            outcome = "cancelled";
            throw;
        }
        catch (Exception ex)
        {
            outcome = "error";
            error = ex.Message;
            throw;
        }
        finally
        {
            CurrentNote.Value = null;
            // Not the request token: a cancelled call must still leave its line in the log.
            await log.AppendAsync(context.Params, outcome, error, note.Detail, CancellationToken.None);
        }
    };

    public async Task AppendAsync(CallToolRequestParams? request, string outcome, string? error, JsonObject? detail, CancellationToken ct)
    {
        var line = new JsonObject
        {
            ["time"] = DateTimeOffset.UtcNow,
            ["tool"] = request?.Name,
            ["arguments"] = request?.Arguments is { } args
                ? new JsonObject(args.Select(a => KeyValuePair.Create(a.Key, JsonSerializer.SerializeToNode(a.Value))))
                : new JsonObject(),
            ["outcome"] = outcome,
        };

        if (error is not null)
        {
            line["error"] = error;
        }

        if (detail is { Count: > 0 })
        {
            line["detail"] = detail;
        }

        var meta = request?.Meta;
        if (meta?[SeqKey] is { } seq)
        {
            line["seq"] = seq.DeepClone();
        }

        var wardenMeta = meta?.Where(m => m.Key.StartsWith(MetaPrefix, StringComparison.Ordinal)).ToList();
        if (wardenMeta is { Count: > 0 })
        {
            line["meta"] = new JsonObject(wardenMeta.Select(m => KeyValuePair.Create(m.Key, m.Value?.DeepClone())));
        }

        byte[] bytes = Encoding.UTF8.GetBytes(line.ToJsonString(WorkplaceJson.Compact) + "\n");
        await _gate.WaitAsync(ct);
        try
        {
            await _stream.WriteAsync(bytes, ct);
            // Flushed to the disk before the caller returns the tool result, so whoever reads the log after
            // seeing the response finds the line.
            _stream.Flush(flushToDisk: true);
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose()
    {
        _stream.Dispose();
        _gate.Dispose();
    }

    private sealed class OperationNote
    {
        public JsonObject Detail { get; } = [];
    }
}
