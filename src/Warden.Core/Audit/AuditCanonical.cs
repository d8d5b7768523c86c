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

    /// <summary>Formats a time the way the encoding and the stores do.</summary>
    public static string FormatTime(DateTimeOffset time) =>
        time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

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
            Ensure(40);
            time.UtcDateTime.TryFormat(Buffer.AsSpan(Length), out var n, "yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);
            Length += n;
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

        private void Ensure(int more)
        {
            if (Length + more > Buffer.Length)
            {
                Array.Resize(ref Buffer, Math.Max(Buffer.Length * 2, Length + more));
            }
        }
    }
}
