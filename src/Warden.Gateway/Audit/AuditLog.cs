using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Warden.Core;
using Warden.Core.Audit;
using Warden.Core.Conditions;
using Warden.Core.Pipeline;
using Warden.Gateway.Configuration;
using Warden.Storage.Sqlite;

namespace Warden.Gateway.Audit;

/// <summary>
/// The gateway's audit: the store (<c>audit.db</c>), its group-commit writer, the digester and the settings.
/// Everything that records goes through <see cref="Record"/>.
/// </summary>
internal sealed partial class AuditLog : IAsyncDisposable
{
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private long _unrecorded;
    private long _unrecordedSince;

    public AuditLog(WardenConfig config, TimeProvider time, ILoggerFactory loggerFactory)
    {
        _time = time;
        _logger = loggerFactory.CreateLogger("Warden.Audit");
        var folder = StoreFactory.DataFolder(config);
        Store = new SqliteAuditStore(new SqliteAuditStoreOptions
        {
            Path = Path.Combine(folder, SqliteAuditStoreOptions.DefaultFileName),
            FullSync = config.Audit.Durability == "fsync",
        });
        Digester = new AuditDigester(AuditKeyFile.LoadOrCreate(folder), config.Audit.MaskArguments);
        WriteTimeout = config.Audit.WriteTimeout;
        AllowOnFailure = config.Audit.OnFailure == "allow";
        Writer = new AuditWriter(Store);
        Writer.Appended += OnAppended;
    }

    public SqliteAuditStore Store { get; }

    public AuditWriter Writer { get; }

    public AuditDigester Digester { get; }

    public TimeSpan WriteTimeout { get; }

    public bool AllowOnFailure { get; }

    public TimeProvider Time => _time;

    /// <summary>
    /// Queues an event, stamping its time when unset. It is written with the next commit, at the latest
    /// <see cref="AuditWriter.DeferFor"/> later (see <see cref="AuditWriter.Defer(AuditEvent)"/>).
    /// </summary>
    public AuditReceipt Record(AuditEvent e) => Writer.Defer(Stamped(e));

    /// <summary>Queues an event built when it is written (see <see cref="AuditWriter.Defer(Func{AuditEvent})"/>).</summary>
    public AuditReceipt Record(Func<AuditEvent> build) => Writer.Defer(build);

    /// <summary>Queues an event the caller waits for and commits at once, on the caller's thread when it can (see <see cref="AuditWriter.Commit"/>).</summary>
    public AuditReceipt Commit(AuditEvent e) => Writer.Commit(Stamped(e));

    private AuditEvent Stamped(AuditEvent e) => e.Time == default ? e with { Time = _time.GetUtcNow() } : e;

    private static readonly string CallPrefix = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
    private static long s_calls;

    /// <summary>A new call id, unique across processes in practice: 12 random hex digits per process, then a counter.</summary>
    public static string NewCallId() => string.Create(null, stackalloc char[32], $"{CallPrefix}-{Interlocked.Increment(ref s_calls):x}");

    /// <summary>Notes a call forwarded unrecorded under <c>on_failure: allow</c>; an <c>audit.gap</c> event records it later.</summary>
    public void NoteUnrecorded()
    {
        Interlocked.CompareExchange(ref _unrecordedSince, _time.GetUtcNow().UtcTicks, 0);
        Interlocked.Increment(ref _unrecorded);
        LogUnrecorded(_logger);
    }

    public void LogRefusal(string call, string reason) => LogRefused(_logger, call, reason);

    private void OnAppended(IReadOnlyList<AuditEvent> written)
    {
        if (Interlocked.Read(ref _unrecorded) == 0)
        {
            return;
        }

        var count = Interlocked.Exchange(ref _unrecorded, 0);
        var since = Interlocked.Exchange(ref _unrecordedSince, 0);
        if (count > 0)
        {
            Record(new AuditEvent
            {
                Kind = AuditKinds.AuditGap,
                Actor = "warden",
                Detail = Json(w =>
                {
                    w.WriteNumber("allowed_unrecorded", count);
                    w.WriteString("since", new DateTimeOffset(since, TimeSpan.Zero));
                    w.WriteString("until", _time.GetUtcNow());
                    w.WriteString("policy", "audit.on_failure: allow");
                }),
            });
        }
    }

    /// <summary>The decision context a replay needs, as compact JSON with sorted keys.</summary>
    public static string DecisionContext(CallContext call)
    {
        IConditionContext view = call;
        return Json(w =>
        {
            w.WriteStartArray("annotated_classes");
            foreach (var c in ToolClassifier.Names(call.AnnotatedClasses))
            {
                w.WriteStringValue(c);
            }

            w.WriteEndArray();
            w.WriteStartArray("classes");
            foreach (var c in view.ToolClasses)
            {
                w.WriteStringValue(c);
            }

            w.WriteEndArray();
            w.WriteStartObject("counts");
            foreach (var (k, v) in call.Counts.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                w.WriteNumber(k, v);
            }

            w.WriteEndObject();
            w.WriteStartArray("groups");
            foreach (var g in view.AgentGroups)
            {
                w.WriteStringValue(g);
            }

            w.WriteEndArray();
            w.WriteStartArray("labels");
            foreach (var l in call.SessionLabels.Order(StringComparer.Ordinal))
            {
                w.WriteStringValue(l);
            }

            w.WriteEndArray();
            w.WriteString("operation", call.Operation switch
            {
                McpOperation.ToolCall => "tools/call",
                McpOperation.ResourceRead => "resources/read",
                McpOperation.PromptGet => "prompts/get",
                McpOperation.Sampling => "sampling/createMessage",
                McpOperation.Elicitation => "elicitation/create",
                _ => call.Operation.ToString(),
            });
            w.WriteString("received", call.ReceivedAt);
        });
    }

    /// <summary>Compact JSON of an object whose properties <paramref name="body"/> writes.</summary>
    public static string Json(Action<Utf8JsonWriter> body)
    {
        // Every decision record writes one of these on the committing thread: its buffer and writer are kept per
        // thread instead of allocated (and grown) per record. A nested call gets fresh ones.
        var scratch = t_json ??= new JsonScratch();
        if (scratch.InUse)
        {
            return new JsonScratch().Write(body);
        }

        scratch.InUse = true;
        try
        {
            var json = scratch.Write(body);
            if (scratch.Buffer.Capacity > 64 * 1024)
            {
                t_json = null; // one huge record must not pin its buffer for the thread's lifetime
            }

            return json;
        }
        finally
        {
            scratch.InUse = false;
        }
    }

    [ThreadStatic]
    private static JsonScratch? t_json;

    private sealed class JsonScratch
    {
        private Utf8JsonWriter? _writer;

        public ArrayBufferWriter<byte> Buffer { get; } = new(1024);

        public bool InUse { get; set; }

        public string Write(Action<Utf8JsonWriter> body)
        {
            Buffer.ResetWrittenCount();
            var w = _writer ??= new Utf8JsonWriter(Buffer);
            w.Reset(Buffer);
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
            w.Flush();
            return Encoding.UTF8.GetString(Buffer.WrittenSpan);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Writer.DisposeAsync().ConfigureAwait(false);
        await Store.DisposeAsync().ConfigureAwait(false);
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Audit unavailable: call {Call} refused ({Reason})")]
    private static partial void LogRefused(ILogger logger, string call, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Audit unavailable: call forwarded unrecorded (audit.on_failure: allow)")]
    private static partial void LogUnrecorded(ILogger logger);
}
