using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Warden.Core.Audit;

/// <summary>
/// The canonical encoding of an audit event and the chain hash over it.
/// </summary>
/// <remarks>
/// The encoding is one JSON object in UTF-8, no whitespace, keys in ascending code-point order, absent (null)
/// fields left out; it is the JSON Canonicalization Scheme (RFC 8785) for the value types used here:
/// <list type="bullet">
/// <item><c>v</c>: the encoding version, 1.</item>
/// <item><c>seq</c>, <c>dur_us</c>: integers in decimal.</item>
/// <item><c>time</c>: <c>yyyy-MM-ddTHH:mm:ss.fffffffZ</c> in UTC.</item>
/// <item><c>prev</c>: the previous event's hash, 64 lower-case hex digits (all zeros for the first event).</item>
/// <item>every other field a JSON string, escaping only <c>"</c>, <c>\</c> and control characters below U+0020
/// (<c>\b \t \n \f \r</c> short forms, otherwise <c>\u00xx</c> in lower case); everything else raw UTF-8.
/// Nested JSON (context, arguments, detail) is embedded as a string, exactly as stored.</item>
/// </list>
/// Keys: actor, agent, args, call, context, detail, dur_us, effect, kind, outcome, policy, prev, result, rule,
/// seq, server, session, time, tool, v. The event's hash is SHA-256 of this encoding; because the encoding holds
/// <c>prev</c>, each hash commits to the whole chain before it.
/// </remarks>
public static class AuditCanonical
{
    /// <summary>The encoding version written in <c>v</c>.</summary>
    public const int Version = 1;

    /// <summary>Size of a hash in bytes.</summary>
    public const int HashSize = 32;

    private static readonly byte[] Genesis = new byte[HashSize];
    private static readonly SearchValues<char> NeedsEscape = SearchValues.Create(
        "\"\\\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000a\u000b\u000c\u000d\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f");

    private static readonly SearchValues<byte> NeedsEscapeUtf8 = SearchValues.Create(
        "\"\\\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000a\u000b\u000c\u000d\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f"u8);

    [ThreadStatic]
    private static byte[]? t_buffer;

    /// <summary>The <c>prev</c> of the first event: 32 zero bytes.</summary>
    public static ReadOnlyMemory<byte> GenesisHash => Genesis;

    /// <summary>The canonical encoding of an event as it stands (its own <see cref="AuditEvent.Seq"/> and <see cref="AuditEvent.PrevHash"/>).</summary>
    public static byte[] Encode(AuditEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var buffer = Rent();
        var length = Write(e, e.Seq, e.PrevHash.Span, ref buffer);
        t_buffer = buffer;
        return buffer.AsSpan(0, length).ToArray();
    }

    /// <summary>The hash of an event at <paramref name="seq"/> after <paramref name="prevHash"/>.</summary>
    public static byte[] ComputeHash(AuditEvent e, long seq, ReadOnlySpan<byte> prevHash)
    {
        var hash = new byte[HashSize];
        ComputeHash(e, seq, prevHash, hash);
        return hash;
    }

    /// <summary>Writes the hash of an event at <paramref name="seq"/> after <paramref name="prevHash"/> into <paramref name="destination"/>.</summary>
    public static void ComputeHash(AuditEvent e, long seq, ReadOnlySpan<byte> prevHash, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(e);
        var buffer = Rent();
        var length = Write(e, seq, prevHash, ref buffer);
        t_buffer = buffer;
        SHA256.HashData(buffer.AsSpan(0, length), destination);
    }

    /// <summary>True when the event's stored <see cref="AuditEvent.Hash"/> matches its contents at <paramref name="seq"/>.</summary>
    public static bool HashMatches(AuditEvent e, long seq)
    {
        ArgumentNullException.ThrowIfNull(e);
        Span<byte> hash = stackalloc byte[HashSize];
        ComputeHash(e, seq, e.PrevHash.Span, hash);
        return hash.SequenceEqual(e.Hash.Span);
    }

    /// <summary>
    /// Writes the hash of a record given as its stored UTF-8 fields (no strings materialized) into
    /// <paramref name="destination"/>. Same encoding as for an <see cref="AuditEvent"/>; a store's fast verify uses it.
    /// </summary>
    public static void ComputeHash(in AuditRecordSpans r, Span<byte> destination)
    {
        var w = new Writer(Rent());
        w.Raw("{"u8);
        w.Str("\"actor\":"u8, r.Actor, present: true);
        w.Str(",\"agent\":"u8, r.Agent, r.Has(AuditRecordSpans.Field.Agent));
        w.Str(",\"args\":"u8, r.Args, r.Has(AuditRecordSpans.Field.Args));
        w.Str(",\"call\":"u8, r.Call, r.Has(AuditRecordSpans.Field.Call));
        w.Str(",\"context\":"u8, r.Context, r.Has(AuditRecordSpans.Field.Context));
        w.Str(",\"detail\":"u8, r.Detail, r.Has(AuditRecordSpans.Field.Detail));
        if (r.DurationMicros is { } d)
        {
            w.Raw(",\"dur_us\":"u8);
            w.Int(d);
        }

        w.Str(",\"effect\":"u8, r.Effect, r.Has(AuditRecordSpans.Field.Effect));
        w.Str(",\"kind\":"u8, r.Kind, present: true);
        w.Str(",\"outcome\":"u8, r.Outcome, r.Has(AuditRecordSpans.Field.Outcome));
        w.Str(",\"policy\":"u8, r.Policy, r.Has(AuditRecordSpans.Field.Policy));
        w.Raw(",\"prev\":\""u8);
        w.Hex(r.Prev.Length == HashSize ? r.Prev : Genesis);
        w.Raw("\""u8);
        w.Str(",\"result\":"u8, r.Result, r.Has(AuditRecordSpans.Field.Result));
        w.Str(",\"rule\":"u8, r.Rule, r.Has(AuditRecordSpans.Field.Rule));
        w.Raw(",\"seq\":"u8);
        w.Int(r.Seq);
        w.Str(",\"server\":"u8, r.Server, r.Has(AuditRecordSpans.Field.Server));
        w.Str(",\"session\":"u8, r.Session, r.Has(AuditRecordSpans.Field.Session));
        // The stored time text is the canonical time only in the canonical layout; anything else is an edit.
        w.Raw(",\"time\":\""u8);
        w.Raw(r.Time);
        w.Raw("\""u8);
        w.Str(",\"tool\":"u8, r.Tool, r.Has(AuditRecordSpans.Field.Tool));
        w.Raw(",\"v\":1}"u8);
        t_buffer = w.Buffer;
        SHA256.HashData(w.Buffer.AsSpan(0, w.Length), destination);
    }

    private static byte[] Rent() => t_buffer ?? new byte[4096];

    private static int Write(AuditEvent e, long seq, ReadOnlySpan<byte> prev, ref byte[] buffer)
    {
        var w = new Writer(buffer);
        w.Raw("{"u8);
        w.Str("\"actor\":"u8, e.Actor, first: true);
        w.Str(",\"agent\":"u8, e.Agent);
        w.Str(",\"args\":"u8, e.Arguments);
        w.Str(",\"call\":"u8, e.Call);
        w.Str(",\"context\":"u8, e.Context);
        w.Str(",\"detail\":"u8, e.Detail);
        if (e.DurationMicros is { } d)
        {
            w.Raw(",\"dur_us\":"u8);
            w.Int(d);
        }

        w.Str(",\"effect\":"u8, e.Effect);
        w.Str(",\"kind\":"u8, e.Kind);
        w.Str(",\"outcome\":"u8, e.Outcome);
        w.Str(",\"policy\":"u8, e.PolicyVersion);
        w.Raw(",\"prev\":\""u8);
        w.Hex(prev.Length == HashSize ? prev : Genesis);
        w.Raw("\""u8);
        w.Str(",\"result\":"u8, e.ResultDigest);
        w.Str(",\"rule\":"u8, e.Rule);
        w.Raw(",\"seq\":"u8);
        w.Int(seq);
        w.Str(",\"server\":"u8, e.Server);
        w.Str(",\"session\":"u8, e.Session);
        w.Raw(",\"time\":\""u8);
        w.Time(e.Time);
        w.Raw("\""u8);
        w.Str(",\"tool\":"u8, e.Tool);
        w.Raw(",\"v\":1}"u8);
        buffer = w.Buffer;
        return w.Length;
    }

    /// <summary>Length of a formatted time.</summary>
    public const int TimeLength = 28;

    /// <summary>Formats a time the way the encoding and the stores do: <c>yyyy-MM-ddTHH:mm:ss.fffffffZ</c> in UTC.</summary>
    public static string FormatTime(DateTimeOffset time)
    {
        Span<byte> bytes = stackalloc byte[TimeLength];
        FormatTime(time, bytes);
        return Encoding.ASCII.GetString(bytes);
    }

    /// <summary>Formats a time as ASCII into <paramref name="destination"/> (at least <see cref="TimeLength"/> bytes); returns the length.</summary>
    public static int FormatTime(DateTimeOffset time, Span<byte> destination)
    {
        // Hand-rolled: the verifier formats a million of these per run, and the fixed layout needs no culture.
        var t = time.UtcDateTime;
        var d = destination[..TimeLength];
        Digits(d[..4], t.Year);
        d[4] = (byte)'-';
        Digits(d.Slice(5, 2), t.Month);
        d[7] = (byte)'-';
        Digits(d.Slice(8, 2), t.Day);
        d[10] = (byte)'T';
        Digits(d.Slice(11, 2), t.Hour);
        d[13] = (byte)':';
        Digits(d.Slice(14, 2), t.Minute);
        d[16] = (byte)':';
        Digits(d.Slice(17, 2), t.Second);
        d[19] = (byte)'.';
        Digits(d.Slice(20, 7), (int)(t.Ticks % TimeSpan.TicksPerSecond));
        d[27] = (byte)'Z';
        return TimeLength;
    }

    /// <summary>Parses <see cref="FormatTime(DateTimeOffset)"/>'s layout, and nothing else (another form of the same instant would hash differently).</summary>
    /// <exception cref="FormatException">The text is not in that layout.</exception>
    public static DateTimeOffset ParseTime(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == TimeLength && text[4] == '-' && text[10] == 'T' && text[19] == '.' && text[27] == 'Z'
            && Num(text, 0, 4, out var year) && Num(text, 5, 2, out var month) && Num(text, 8, 2, out var day)
            && Num(text, 11, 2, out var hour) && Num(text, 14, 2, out var minute) && Num(text, 17, 2, out var second) && Num(text, 20, 7, out var fraction)
            && month is >= 1 and <= 12 && day >= 1 && day <= DateTime.DaysInMonth(year < 1 ? 1 : year, month) && hour < 24 && minute < 60 && second < 60 && year >= 1)
        {
            return new DateTimeOffset(new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc).AddTicks(fraction), TimeSpan.Zero);
        }

        throw new FormatException($"'{text}' is not a time in the audit's layout (yyyy-MM-ddTHH:mm:ss.fffffffZ)");
    }

    private static bool Num(string s, int start, int length, out int value)
    {
        value = 0;
        for (var i = start; i < start + length; i++)
        {
            var c = s[i] - '0';
            if ((uint)c > 9)
            {
                return false;
            }

            value = (value * 10) + c;
        }

        return true;
    }

    private static void Digits(Span<byte> destination, int value)
    {
        for (var i = destination.Length - 1; i >= 0; i--)
        {
            destination[i] = (byte)('0' + (value % 10));
            value /= 10;
        }
    }

    private ref struct Writer(byte[] buffer)
    {
        public byte[] Buffer = buffer;
        public int Length;

        public void Raw(ReadOnlySpan<byte> bytes)
        {
            Ensure(bytes.Length);
            bytes.CopyTo(Buffer.AsSpan(Length));
            Length += bytes.Length;
        }

        public void Int(long value)
        {
            Ensure(20);
            value.TryFormat(Buffer.AsSpan(Length), out var n, default, CultureInfo.InvariantCulture);
            Length += n;
        }

        public void Hex(ReadOnlySpan<byte> bytes)
        {
            Ensure(bytes.Length * 2);
            Convert.TryToHexStringLower(bytes, Buffer.AsSpan(Length), out var n);
            Length += n;
        }

        public void Time(DateTimeOffset time)
        {
            Ensure(28);
            Length += FormatTime(time, Buffer.AsSpan(Length));
        }

        public void Str(ReadOnlySpan<byte> key, string? value, bool first = false)
        {
            if (value is null)
            {
                if (first)
                {
                    throw new ArgumentException("The first field must be present.", nameof(value));
                }

                return;
            }

            Raw(key);
            Raw("\""u8);
            var rest = value.AsSpan();
            while (true)
            {
                var i = rest.IndexOfAny(NeedsEscape);
                var plain = i < 0 ? rest : rest[..i];
                if (!plain.IsEmpty)
                {
                    Ensure(Encoding.UTF8.GetMaxByteCount(plain.Length));
                    Length += Encoding.UTF8.GetBytes(plain, Buffer.AsSpan(Length));
                }

                if (i < 0)
                {
                    break;
                }

                var c = rest[i];
                switch (c)
                {
                    case '"': Raw("\\\""u8); break;
                    case '\\': Raw("\\\\"u8); break;
                    case '\b': Raw("\\b"u8); break;
                    case '\t': Raw("\\t"u8); break;
                    case '\n': Raw("\\n"u8); break;
                    case '\f': Raw("\\f"u8); break;
                    case '\r': Raw("\\r"u8); break;
                    default:
                        Raw("\\u00"u8);
                        Ensure(2);
                        Buffer[Length++] = (byte)"0123456789abcdef"[c >> 4];
                        Buffer[Length++] = (byte)"0123456789abcdef"[c & 15];
                        break;
                }

                rest = rest[(i + 1)..];
            }

            Raw("\""u8);
        }

        public void Str(ReadOnlySpan<byte> key, ReadOnlySpan<byte> utf8, bool present)
        {
            if (!present)
            {
                return;
            }

            Raw(key);
            Raw("\""u8);
            var rest = utf8;
            while (true)
            {
                var i = rest.IndexOfAny(NeedsEscapeUtf8);
                Raw(i < 0 ? rest : rest[..i]);
                if (i < 0)
                {
                    break;
                }

                Escape((char)rest[i]);
                rest = rest[(i + 1)..];
            }

            Raw("\""u8);
        }

        private void Escape(char c)
        {
            switch (c)
            {
                case '"': Raw("\\\""u8); break;
                case '\\': Raw("\\\\"u8); break;
                case '\b': Raw("\\b"u8); break;
                case '\t': Raw("\\t"u8); break;
                case '\n': Raw("\\n"u8); break;
                case '\f': Raw("\\f"u8); break;
                case '\r': Raw("\\r"u8); break;
                default:
                    Raw("\\u00"u8);
                    Ensure(2);
                    Buffer[Length++] = (byte)"0123456789abcdef"[c >> 4];
                    Buffer[Length++] = (byte)"0123456789abcdef"[c & 15];
                    break;
            }
        }

        private void Ensure(int more)
        {
            if (Length + more > Buffer.Length)
            {
                Array.Resize(ref Buffer, Math.Max(Buffer.Length * 2, Length + more));
            }
        }
    }
}

/// <summary>
/// A stored record's fields as UTF-8 spans, for hashing straight from a store's buffers. <see cref="Time"/> is the
/// stored text, which must be in the canonical layout; absent fields are marked in <see cref="Present"/>.
/// </summary>
public ref struct AuditRecordSpans
{
    /// <summary>Optional fields.</summary>
    [Flags]
    public enum Field
    {
        /// <summary>None.</summary>
        None = 0,
        /// <summary>agent.</summary>
        Agent = 1 << 0,
        /// <summary>session.</summary>
        Session = 1 << 1,
        /// <summary>call.</summary>
        Call = 1 << 2,
        /// <summary>server.</summary>
        Server = 1 << 3,
        /// <summary>tool.</summary>
        Tool = 1 << 4,
        /// <summary>effect.</summary>
        Effect = 1 << 5,
        /// <summary>rule.</summary>
        Rule = 1 << 6,
        /// <summary>policy.</summary>
        Policy = 1 << 7,
        /// <summary>context.</summary>
        Context = 1 << 8,
        /// <summary>args.</summary>
        Args = 1 << 9,
        /// <summary>result.</summary>
        Result = 1 << 10,
        /// <summary>outcome.</summary>
        Outcome = 1 << 11,
        /// <summary>detail.</summary>
        Detail = 1 << 12,
    }

    public long Seq;
    public long? DurationMicros;
    public Field Present;
    public ReadOnlySpan<byte> Time;
    public ReadOnlySpan<byte> Kind;
    public ReadOnlySpan<byte> Actor;
    public ReadOnlySpan<byte> Agent;
    public ReadOnlySpan<byte> Session;
    public ReadOnlySpan<byte> Call;
    public ReadOnlySpan<byte> Server;
    public ReadOnlySpan<byte> Tool;
    public ReadOnlySpan<byte> Effect;
    public ReadOnlySpan<byte> Rule;
    public ReadOnlySpan<byte> Policy;
    public ReadOnlySpan<byte> Context;
    public ReadOnlySpan<byte> Args;
    public ReadOnlySpan<byte> Result;
    public ReadOnlySpan<byte> Outcome;
    public ReadOnlySpan<byte> Detail;
    public ReadOnlySpan<byte> Prev;
    public ReadOnlySpan<byte> Hash;

    /// <summary>True when the optional field is present.</summary>
    public readonly bool Has(Field field) => (Present & field) != 0;
}
