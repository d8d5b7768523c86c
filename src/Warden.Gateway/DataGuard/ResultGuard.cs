using System.Text.Json;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using Warden.Core.DataGuard;
using Warden.Core.Pipeline;

namespace Warden.Gateway.DataGuard;

/// <summary>
/// The data guard on the result path: scans what an upstream answered before the agent sees it, block by block
/// (text content, embedded text resources, structured content, resource contents, prompt messages), redacts in
/// place, withholds the result when policy blocks a finding, and labels the agent when it read labelled data.
/// </summary>
/// <remarks>
/// The SDK has already parsed the result into objects; each text is scanned where it lies (long ones in windows,
/// see <see cref="DataScanner"/>) and only a redacted block is replaced, so a large result is never copied whole.
/// </remarks>
internal sealed class ResultGuard(DataGuardStage stage, TimeProvider time, LabelSync? labels = null)
{
    /// <summary>
    /// Guards a result of any kind the gateway forwards; other values pass unchanged. When the result labels the agent,
    /// the label is made durable before the agent sees the result; if the store cannot take it, the result is withheld.
    /// </summary>
    public async ValueTask<T> GuardAsync<T>(CallContext call, T result)
    {
        if (result is null || stage.BeginResult(call, time.GetUtcNow()) is not { } scan)
        {
            return result;
        }

        object guarded = result switch
        {
            CallToolResult r => Tool(scan, r),
            ReadResourceResult r => Resource(scan, r),
            GetPromptResult r => Prompt(scan, r),
            _ => result,
        };
        var record = scan.Commit();
        string? why = null;
        if (scan.Withhold)
        {
            why = $"withheld by the data guard: {scan.WithheldBecause}";
        }
        else if (record is not null && labels is not null && !await labels.RecordAsync(record).ConfigureAwait(false))
        {
            // Fail closed: a label only this process knows would be shed by a restart or another replica.
            why = $"withheld by the data guard: this result labels the agent ({string.Join(", ", record.Labels)}) and the store could not record the label; try again when the store is back";
        }

        if (why is not null)
        {
            if (result is CallToolResult)
            {
                return (T)(object)new CallToolResult { IsError = true, Content = [new TextContentBlock { Text = why }] };
            }

            throw new McpProtocolException(why, McpErrorCode.InternalError);
        }

        return (T)guarded;
    }

    private static CallToolResult Tool(ResultScan scan, CallToolResult r)
    {
        for (var i = 0; i < r.Content.Count; i++)
        {
            switch (r.Content[i])
            {
                case TextContentBlock t:
                    t.Text = scan.Text($"content[{i}]", t.Text);
                    break;
                case EmbeddedResourceBlock { Resource: TextResourceContents tr }:
                    tr.Text = scan.Text($"content[{i}].resource", tr.Text);
                    break;
            }
        }

        if (r.StructuredContent is { } structured)
        {
            r.StructuredContent = scan.Json("structuredContent", structured);
        }

        return r;
    }

    private static ReadResourceResult Resource(ResultScan scan, ReadResourceResult r)
    {
        for (var i = 0; i < r.Contents.Count; i++)
        {
            if (r.Contents[i] is TextResourceContents t)
            {
                t.Text = scan.Text($"contents[{i}]", t.Text);
            }
        }

        return r;
    }

    private static GetPromptResult Prompt(ResultScan scan, GetPromptResult r)
    {
        for (var i = 0; i < r.Messages.Count; i++)
        {
            switch (r.Messages[i].Content)
            {
                case TextContentBlock t:
                    t.Text = scan.Text($"messages[{i}]", t.Text);
                    break;
                case EmbeddedResourceBlock { Resource: TextResourceContents tr }:
                    tr.Text = scan.Text($"messages[{i}].resource", tr.Text);
                    break;
            }
        }

        return r;
    }

    /// <summary>Writes findings into an audit record's detail (values masked).</summary>
    public static void WriteFindings(Utf8JsonWriter w, string name, IReadOnlyList<Finding>? findings)
    {
        if (findings is not { Count: > 0 })
        {
            return;
        }

        w.WriteStartArray(name);
        foreach (var f in findings.Take(50))
        {
            w.WriteStartObject();
            w.WriteString("kind", f.Kind);
            w.WriteString("category", Finding.CategoryName(f.Category));
            w.WriteString("location", f.Location);
            w.WriteNumber("confidence", Math.Round(f.Confidence, 2));
            w.WriteString("masked", f.Masked);
            if (f.Encoding is { } e)
            {
                w.WriteString("encoding", e);
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
    }
}
