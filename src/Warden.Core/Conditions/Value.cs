using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Warden.Core.Conditions;

/// <summary>The runtime kind of a <see cref="Value"/>.</summary>
internal enum Kind : byte
{
    Error = 0,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    List,
    Map,
    Timestamp,
    Duration,
    Type,
    Message,
}

/// <summary>
/// A CEL value. A struct so that evaluating predicates over existing data never boxes.
/// JSON strings, arrays and objects stay as <see cref="JsonElement"/> (never copied); JSON numbers, booleans and null
/// become native values when read. Lists and maps have several physical representations (see <see cref="ListOps"/>).
/// </summary>
internal readonly struct Value
{
    public readonly Kind Kind;

    /// <summary>True when the string, list or map lives in <see cref="Json"/>.</summary>
    public readonly bool IsJson;

    public readonly long Bits;
    public readonly object? Obj;
    public readonly JsonElement Json;

    private Value(Kind kind, long bits, object? obj)
    {
        Kind = kind;
        Bits = bits;
        Obj = obj;
        IsJson = false;
        Json = default;
    }

    private Value(Kind kind, JsonElement json)
    {
        Kind = kind;
        IsJson = true;
        Json = json;
        Bits = 0;
        Obj = null;
    }

    public static readonly Value Null = new(Kind.Null, 0, null);
    public static readonly Value True = new(Kind.Bool, 1, null);
    public static readonly Value False = new(Kind.Bool, 0, null);

    public static Value Bool(bool b) => b ? True : False;
    public static Value Int(long v) => new(Kind.Int, v, null);
    public static Value Uint(ulong v) => new(Kind.Uint, unchecked((long)v), null);
    public static Value Double(double v) => new(Kind.Double, BitConverter.DoubleToInt64Bits(v), null);
    public static Value String(string s) => new(Kind.String, 0, s);
    public static Value Bytes(byte[] b) => new(Kind.Bytes, 0, b);
    public static Value List(object rep) => new(Kind.List, 0, rep);
    public static Value Map(object rep) => new(Kind.Map, 0, rep);
    public static Value Timestamp(long ticksUtc) => new(Kind.Timestamp, ticksUtc, null);
    public static Value Duration(long nanos) => new(Kind.Duration, nanos, null);
    public static Value TypeOf(string name) => new(Kind.Type, 0, name);
    public static Value Message(MessageValue m) => new(Kind.Message, 0, m);
    public static Value Error(string message) => new(Kind.Error, 0, message);

    public static Value FromJson(JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.String: return new Value(Kind.String, e);
            case JsonValueKind.Array: return new Value(Kind.List, e);
            case JsonValueKind.Object: return new Value(Kind.Map, e);
            case JsonValueKind.True: return True;
            case JsonValueKind.False: return False;
            case JsonValueKind.Number:
                if (JsonNumber.TryFast(JsonMarshal.GetRawUtf8Value(e), out var fast))
                {
                    return fast;
                }

                if (e.TryGetInt64(out var l))
                {
                    return Int(l);
                }

                return Double(e.GetDouble());
            case JsonValueKind.Null: return Null;
            default: return Error("undefined JSON value");
        }
    }

    public bool IsError => Kind == Kind.Error;
    public bool AsBool => Bits != 0;
    public long AsInt => Bits;
    public ulong AsUint => unchecked((ulong)Bits);
    public double AsDouble => BitConverter.Int64BitsToDouble(Bits);
    public string ErrorMessage => Obj as string ?? "error";
    public byte[] AsBytes => (byte[])Obj!;

    /// <summary>The string, allocating only for JSON strings.</summary>
    public string AsString => IsJson ? Json.GetString()! : (string)Obj!;

    public string TypeName => Kind switch
    {
        Kind.Null => "null_type",
        Kind.Bool => "bool",
        Kind.Int => "int",
        Kind.Uint => "uint",
        Kind.Double => "double",
        Kind.String => "string",
        Kind.Bytes => "bytes",
        Kind.List => "list",
        Kind.Map => "map",
        Kind.Timestamp => "google.protobuf.Timestamp",
        Kind.Duration => "google.protobuf.Duration",
        Kind.Type => "type",
        Kind.Message => ((MessageValue)Obj!).TypeName,
        _ => "error",
    };

    public override string ToString() => Format.Display(this);
}

/// <summary>
/// Converts the common JSON numbers without the general parser, which costs more than the rest of a simple
/// condition: integers of up to 18 digits, and decimals without exponent whose digits fit in 15 (so the
/// significand and the power of ten are exact doubles and one IEEE division gives the correctly rounded value,
/// the same double <see cref="JsonElement.GetDouble"/> returns). Everything else takes the general path.
/// </summary>
internal static class JsonNumber
{
    private static readonly double[] Pow10 = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

    public static bool TryFast(ReadOnlySpan<byte> raw, out Value value)
    {
        if (!TryFast(raw, out var isInt, out var l, out var d))
        {
            value = default;
            return false;
        }

        value = isInt ? Value.Int(l) : Value.Double(d);
        return true;
    }

    /// <summary>The same conversion without building a <see cref="Value"/>: an int in <paramref name="l"/> or a double in <paramref name="d"/>.</summary>
    public static bool TryFast(ReadOnlySpan<byte> raw, out bool isInt, out long l, out double d)
    {
        isInt = false;
        l = 0;
        d = 0;
        var i = 0;
        var negative = false;
        if (raw.Length > 0 && raw[0] == (byte)'-')
        {
            negative = true;
            i = 1;
        }

        long m = 0;
        var digits = 0;
        var fraction = -1;
        for (; i < raw.Length; i++)
        {
            var c = raw[i];
            var digit = (uint)(c - '0');
            if (digit <= 9)
            {
                if (++digits > 18)
                {
                    return false;
                }

                m = (m * 10) + digit;
            }
            else if (c == (byte)'.' && fraction < 0)
            {
                fraction = digits;
            }
            else
            {
                // An exponent (or anything unexpected): the general parser decides.
                return false;
            }
        }

        if (digits == 0)
        {
            return false;
        }

        if (fraction < 0)
        {
            isInt = true;
            l = negative ? -m : m;
            return true;
        }

        var scale = digits - fraction;
        if (digits > 15 || scale == 0)
        {
            return false;
        }

        var dv = m / Pow10[scale];
        d = negative ? -dv : dv;
        return true;
    }
}

/// <summary>A compile-time named list (<c>lists.NAME</c>): ordered items plus a set for O(1) membership without allocation.</summary>
internal sealed class StringSetList
{
    public StringSetList(IReadOnlyList<string> items)
    {
        Items = items.ToArray();
        Set = new HashSet<string>(Items, StringComparer.Ordinal);
        Lookup = Set.GetAlternateLookup<ReadOnlySpan<char>>();
        Utf8 = new Utf8Set(Set.Select(Encoding.UTF8.GetBytes));
    }

    /// <summary>Membership straight from a JSON string's raw UTF-8, without decoding.</summary>
    public Utf8Set Utf8 { get; }

    public bool Contains(in Value item)
    {
        if (item.IsJson)
        {
            var raw = JsonMarshal.GetRawUtf8Value(item.Json);
            if (raw.Length >= 2)
            {
                raw = raw[1..^1];
            }

            var member = Utf8.ContainsUnescaped(raw, out var escaped);
            if (!escaped)
            {
                return member;
            }
        }

        return Lookup.Contains(Str.Chars(item));
    }

    public string[] Items { get; }
    public HashSet<string> Set { get; }
    public HashSet<string>.AlternateLookup<ReadOnlySpan<char>> Lookup { get; }
}

/// <summary>
/// A read-only set of UTF-8 strings with open addressing. Lists are fixed at load, so the table is built once
/// at under half load; a lookup is one hash over the input and usually one comparison. The hash is not keyed:
/// an input can only collide with the list's own entries, which the policy author chose, so the longest probe
/// sequence is fixed when the list loads.
/// </summary>
internal sealed class Utf8Set
{
    private readonly byte[][] _keys;
    private readonly ulong[] _hashes;
    private readonly int[] _slots;
    private readonly int _mask;

    public Utf8Set(IEnumerable<byte[]> keys)
    {
        _keys = [.. keys];
        _hashes = [.. _keys.Select(k => Hash(k))];
        var capacity = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(4, _keys.Length * 2 + 1));
        _mask = capacity - 1;
        _slots = new int[capacity];
        Array.Fill(_slots, -1);
        for (var i = 0; i < _keys.Length; i++)
        {
            var at = (int)_hashes[i] & _mask;
            while (_slots[at] >= 0)
            {
                at = (at + 1) & _mask;
            }

            _slots[at] = i;
        }
    }

    public bool Contains(ReadOnlySpan<byte> key) => Find(key, Hash(key));

    /// <summary>
    /// Membership of a JSON string given its raw UTF-8 (between the quotes), which is the string's UTF-8 unless it
    /// has escapes: then <paramref name="escaped"/> is set and the answer is false (the caller decodes). The escape
    /// test is folded into the hash's pass over the bytes.
    /// </summary>
    public bool ContainsUnescaped(ReadOnlySpan<byte> raw, out bool escaped)
    {
        var h = Hash(raw, out escaped);
        return !escaped && Find(raw, h);
    }

    private bool Find(ReadOnlySpan<byte> key, ulong h)
    {
        var at = (int)h & _mask;
        while (true)
        {
            var i = _slots[at];
            if (i < 0)
            {
                return false;
            }

            if (_hashes[i] == h && key.SequenceEqual(_keys[i]))
            {
                return true;
            }

            at = (at + 1) & _mask;
        }
    }

    /// <summary>A fast 64-bit mix over 8-byte words (not cryptographic; see the class remarks).</summary>
    public static ulong Hash(ReadOnlySpan<byte> s) => Hash(s, out _);

    /// <summary><see cref="Hash(ReadOnlySpan{byte})"/>, also saying whether a backslash occurs (a JSON escape).</summary>
    public static ulong Hash(ReadOnlySpan<byte> s, out bool backslash)
    {
        const ulong K = 0x9E3779B97F4A7C15;
        ulong seen = 0;
        var h = (ulong)s.Length * K;
        if (s.Length >= 8)
        {
            var rest = s;
            while (rest.Length > 8)
            {
                var w = BinaryPrimitives.ReadUInt64LittleEndian(rest);
                seen |= ZeroByte(w ^ Backslashes);
                h = (h ^ w) * K;
                h ^= h >> 29;
                rest = rest[8..];
            }

            // The last word overlaps the one before when the length is not a multiple of 8 (the length is mixed in
            // above), which replaces a loop over the remaining bytes.
            var last = BinaryPrimitives.ReadUInt64LittleEndian(s[^8..]);
            seen |= ZeroByte(last ^ Backslashes);
            h = (h ^ last) * K;
        }
        else if (s.Length >= 4)
        {
            var tail = BinaryPrimitives.ReadUInt32LittleEndian(s) | ((ulong)BinaryPrimitives.ReadUInt32LittleEndian(s[^4..]) << 32);
            seen |= ZeroByte(tail ^ Backslashes);
            h = (h ^ tail) * K;
        }
        else
        {
            ulong tail = 0;
            for (var i = 0; i < s.Length; i++)
            {
                tail |= (ulong)s[i] << (8 * i);
                seen |= s[i] == (byte)'\\' ? 1UL : 0;
            }

            h = (h ^ tail) * K;
        }

        backslash = seen != 0;
        return h ^ (h >> 32);
    }

    private const ulong Backslashes = 0x5C5C5C5C5C5C5C5C;

    /// <summary>Non-zero exactly when some byte of <paramref name="v"/> is zero.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static ulong ZeroByte(ulong v) => (v - 0x0101010101010101) & ~v & 0x8080808080808080;
}

/// <summary>A map built by an expression (map literal). Keys are normalised so that 1, 1u and 1.0 are the same key.</summary>
internal sealed class MapValue
{
    public MapValue(int capacity)
    {
        Keys = new List<Value>(capacity);
        Values = new List<Value>(capacity);
        Index = new Dictionary<MapKey, int>(capacity);
    }

    public List<Value> Keys { get; }
    public List<Value> Values { get; }
    public Dictionary<MapKey, int> Index { get; }

    public bool TryAdd(in Value key, in Value value)
    {
        if (!MapKey.TryCreate(key, out var k) || !Index.TryAdd(k, Keys.Count))
        {
            return false;
        }

        Keys.Add(key);
        Values.Add(value);
        return true;
    }
}

/// <summary>A protobuf-like message value; only used by the conformance suite's message literals.</summary>
internal sealed class MessageValue
{
    public MessageValue(string typeName, Dictionary<string, Value> fields, Func<string, Value?> defaults)
    {
        TypeName = typeName;
        Fields = fields;
        Defaults = defaults;
    }

    public string TypeName { get; }
    public Dictionary<string, Value> Fields { get; }
    public Func<string, Value?> Defaults { get; }
}

/// <summary>Hash key for map literals under CEL's heterogeneous key equality.</summary>
internal readonly record struct MapKey(byte Tag, long Bits, string? Str)
{
    public static bool TryCreate(in Value v, out MapKey key)
    {
        switch (v.Kind)
        {
            case Kind.Bool: key = new MapKey(1, v.Bits, null); return true;
            case Kind.Int: key = new MapKey(2, v.Bits, null); return true;
            case Kind.Uint:
                key = v.AsUint <= long.MaxValue ? new MapKey(2, v.Bits, null) : new MapKey(3, v.Bits, null);
                return true;
            case Kind.Double:
                var d = v.AsDouble;
                if (d == Math.Floor(d) && d >= -9.2233720368547758E18 && d < 9.2233720368547758E18)
                {
                    key = new MapKey(2, (long)d, null);
                    return true;
                }

                if (d == Math.Floor(d) && d >= 0 && d < 1.8446744073709552E19)
                {
                    key = new MapKey(3, unchecked((long)(ulong)d), null);
                    return true;
                }

                key = new MapKey(4, v.Bits, null);
                return true;
            case Kind.String: key = new MapKey(5, 0, v.AsString); return true;
            default: key = default; return false;
        }
    }
}

/// <summary>Read-only access to a string value as characters without allocating for short JSON strings.</summary>
internal static class Str
{
    /// <summary>Longest JSON string decoded into the per-thread buffers; longer ones are materialised.</summary>
    public const int MaxBufferedChars = 1 << 16;

    [ThreadStatic]
    private static char[]? t_buffer0;

    [ThreadStatic]
    private static char[]? t_buffer1;

    /// <summary>
    /// The characters of a string value. JSON strings are decoded into one of two per-thread buffers (no allocation,
    /// no zeroing); the span is valid until the next call with the same <paramref name="which"/> on this thread.
    /// </summary>
    public static ReadOnlySpan<char> Chars(in Value v, int which = 0)
    {
        if (!v.IsJson)
        {
            return ((string)v.Obj!).AsSpan();
        }

        var raw = JsonMarshal.GetRawUtf8Value(v.Json);
        if (raw.Length >= 2)
        {
            raw = raw[1..^1];
        }

        if (raw.Length > MaxBufferedChars || raw.IndexOf((byte)'\\') >= 0)
        {
            return v.Json.GetString().AsSpan();
        }

        ref var slot = ref (which == 0 ? ref t_buffer0 : ref t_buffer1);
        if (slot == null || slot.Length < raw.Length)
        {
            slot = new char[Math.Max(256, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)raw.Length))];
        }

        var n = Encoding.UTF8.GetChars(raw, slot);
        return slot.AsSpan(0, n);
    }

    /// <summary>Raw UTF-8 of an unescaped JSON string (without quotes), or false when it has escapes.</summary>
    public static bool TryRawUtf8(in Value v, out ReadOnlySpan<byte> utf8)
    {
        utf8 = JsonMarshal.GetRawUtf8Value(v.Json);
        if (utf8.Length >= 2)
        {
            utf8 = utf8[1..^1];
        }

        return utf8.IndexOf((byte)'\\') < 0;
    }

    public static bool Equal(in Value a, in Value b)
    {
        if (!a.IsJson && !b.IsJson)
        {
            return string.Equals((string)a.Obj!, (string)b.Obj!, StringComparison.Ordinal);
        }

        if (a.IsJson && !b.IsJson)
        {
            return a.Json.ValueEquals((string)b.Obj!);
        }

        if (!a.IsJson)
        {
            return b.Json.ValueEquals((string)a.Obj!);
        }

        return Chars(a, 0).SequenceEqual(Chars(b, 1));
    }

    /// <summary>Orders by Unicode code point (UTF-16 ordinal order differs only around surrogates).</summary>
    public static int Compare(ReadOnlySpan<char> a, ReadOnlySpan<char> b)
    {
        var n = Math.Min(a.Length, b.Length);
        for (var i = 0; i < n; i++)
        {
            var x = a[i];
            var y = b[i];
            if (x == y)
            {
                continue;
            }

            if (x >= 0xD800 && y >= 0xD800)
            {
                var sx = char.IsSurrogate(x);
                var sy = char.IsSurrogate(y);
                if (sx != sy)
                {
                    return sx ? 1 : -1;
                }
            }

            return x < y ? -1 : 1;
        }

        return a.Length.CompareTo(b.Length);
    }

    public static long CodePoints(in Value v)
    {
        if (v.IsJson)
        {
            var raw = JsonMarshal.GetRawUtf8Value(v.Json);
            if (raw.IndexOf((byte)'\\') < 0)
            {
                long count = 0;
                foreach (var c in raw)
                {
                    if ((c & 0xC0) != 0x80)
                    {
                        count++;
                    }
                }

                return count - 2;
            }
        }

        return CodePoints(v.AsString.AsSpan());
    }

    public static long CodePoints(ReadOnlySpan<char> s)
    {
        long count = 0;
        for (var i = 0; i < s.Length; i++)
        {
            if (!char.IsLowSurrogate(s[i]))
            {
                count++;
            }
        }

        return count;
    }
}

/// <summary>Uniform operations over every physical list representation.</summary>
internal static class ListOps
{
    public static int Count(in Value v)
    {
        if (v.IsJson)
        {
            return v.Json.GetArrayLength();
        }

        return v.Obj switch
        {
            Value[] a => a.Length,
            StringSetList s => s.Items.Length,
            IReadOnlyList<string> l => l.Count,
            IReadOnlyCollection<string> c => c.Count,
            _ => 0,
        };
    }

    /// <summary>Materialises any list as an array; used only off the hot path.</summary>
    public static Value[] ToArray(in Value v)
    {
        if (v.IsJson)
        {
            var arr = new Value[v.Json.GetArrayLength()];
            var i = 0;
            foreach (var e in v.Json.EnumerateArray())
            {
                arr[i++] = Value.FromJson(e);
            }

            return arr;
        }

        switch (v.Obj)
        {
            case Value[] a: return a;
            case StringSetList s: return s.Items.Select(Value.String).ToArray();
            case IEnumerable<string> c: return c.Select(Value.String).ToArray();
            default: return [];
        }
    }

    public static Value Get(in Value v, long index)
    {
        var n = Count(v);
        if (index < 0 || index >= n)
        {
            return Value.Error("index out of range");
        }

        var i = (int)index;
        if (v.IsJson)
        {
            return Value.FromJson(v.Json[i]);
        }

        return v.Obj switch
        {
            Value[] a => a[i],
            StringSetList s => Value.String(s.Items[i]),
            IReadOnlyList<string> l => Value.String(l[i]),
            IReadOnlyCollection<string> c => Value.String(c.ElementAt(i)),
            _ => Value.Error("index out of range"),
        };
    }

    /// <summary>CEL <c>in</c> over a list: heterogeneous equality against each element.</summary>
    public static Value Contains(in Value list, in Value item, ref long budget)
    {
        if (item.Kind == Kind.String)
        {
            switch (list.Obj)
            {
                case StringSetList s:
                {
                    return Value.Bool(s.Contains(item));
                }

                case ISet<string> set when !item.IsJson:
                    return Value.Bool(set.Contains((string)item.Obj!));
                case IReadOnlySet<string> rset when !item.IsJson:
                    return Value.Bool(rset.Contains((string)item.Obj!));
                case IEnumerable<string> strings when list.Obj is not Value[]:
                {
                    budget -= ListOps.Count(list);
                    if (budget < 0)
                    {
                        return Ops.CostExceeded;
                    }

                    if (strings is IReadOnlyList<string> rl)
                    {
                        for (var i = 0; i < rl.Count; i++)
                        {
                            if (Str.Equal(item, Value.String(rl[i])))
                            {
                                return Value.True;
                            }
                        }

                        return Value.False;
                    }

                    foreach (var s in strings)
                    {
                        if (Str.Equal(item, Value.String(s)))
                        {
                            return Value.True;
                        }
                    }

                    return Value.False;
                }
            }
        }
        else if (list.Obj is StringSetList or IEnumerable<string>)
        {
            return Value.False;
        }

        if (list.IsJson)
        {
            foreach (var e in list.Json.EnumerateArray())
            {
                if (--budget < 0)
                {
                    return Ops.CostExceeded;
                }

                var r = Ops.Equal(Value.FromJson(e), item, ref budget, 0);
                if (r.IsError)
                {
                    return r;
                }

                if (r.AsBool)
                {
                    return Value.True;
                }
            }

            return Value.False;
        }

        if (list.Obj is Value[] arr)
        {
            foreach (var e in arr)
            {
                if (--budget < 0)
                {
                    return Ops.CostExceeded;
                }

                var r = Ops.Equal(e, item, ref budget, 0);
                if (r.IsError)
                {
                    return r;
                }

                if (r.AsBool)
                {
                    return Value.True;
                }
            }
        }

        return Value.False;
    }
}

/// <summary>Uniform operations over every physical map representation.</summary>
internal static class MapOps
{
    public static int Count(in Value v)
    {
        if (v.IsJson)
        {
            var n = 0;
            foreach (var _ in v.Json.EnumerateObject())
            {
                n++;
            }

            return n;
        }

        return v.Obj switch
        {
            MapValue m => m.Keys.Count,
            IReadOnlyDictionary<string, JsonElement> d => d.Count,
            IReadOnlyDictionary<string, long> c => c.Count,
            _ => 0,
        };
    }

    /// <summary>Looks a key up; returns false when absent (the caller decides between error and has()=false).</summary>
    public static bool TryGet(in Value map, in Value key, out Value result)
    {
        if (map.IsJson)
        {
            if (key.Kind == Kind.String)
            {
                if (!key.IsJson)
                {
                    if (map.Json.TryGetProperty((string)key.Obj!, out var p))
                    {
                        result = Value.FromJson(p);
                        return true;
                    }
                }
                else
                {
                    if (map.Json.TryGetProperty(Str.Chars(key), out var p))
                    {
                        result = Value.FromJson(p);
                        return true;
                    }
                }
            }

            result = default;
            return false;
        }

        switch (map.Obj)
        {
            case IReadOnlyDictionary<string, JsonElement> d when key.Kind == Kind.String:
                if (d.TryGetValue(key.AsString, out var je))
                {
                    result = Value.FromJson(je);
                    return true;
                }

                break;
            case IReadOnlyDictionary<string, long> c when key.Kind == Kind.String:
                if (c.TryGetValue(key.AsString, out var l))
                {
                    result = Value.Int(l);
                    return true;
                }

                break;
            case MapValue m:
                if (MapKey.TryCreate(key, out var mk) && m.Index.TryGetValue(mk, out var idx))
                {
                    result = m.Values[idx];
                    return true;
                }

                break;
        }

        result = default;
        return false;
    }

    public static bool TryGetField(in Value map, string field, out Value result)
    {
        if (map.IsJson)
        {
            if (map.Json.TryGetProperty(field, out var p))
            {
                result = Value.FromJson(p);
                return true;
            }

            result = default;
            return false;
        }

        switch (map.Obj)
        {
            case IReadOnlyDictionary<string, JsonElement> d:
                if (d.TryGetValue(field, out var je))
                {
                    result = Value.FromJson(je);
                    return true;
                }

                break;
            case IReadOnlyDictionary<string, long> c:
                if (c.TryGetValue(field, out var l))
                {
                    result = Value.Int(l);
                    return true;
                }

                break;
            default:
                return TryGet(map, Value.String(field), out result);
        }

        result = default;
        return false;
    }

    /// <summary>Keys in iteration order; allocates (macros over maps are rare in policies).</summary>
    public static Value[] Keys(in Value map)
    {
        if (map.IsJson)
        {
            var list = new List<Value>();
            foreach (var p in map.Json.EnumerateObject())
            {
                list.Add(Value.String(p.Name));
            }

            return list.ToArray();
        }

        return map.Obj switch
        {
            MapValue m => m.Keys.ToArray(),
            IReadOnlyDictionary<string, JsonElement> d => d.Keys.Select(Value.String).ToArray(),
            IReadOnlyDictionary<string, long> c => c.Keys.Select(Value.String).ToArray(),
            _ => [],
        };
    }

    public static IEnumerable<KeyValuePair<Value, Value>> Entries(Value map)
    {
        foreach (var k in Keys(map))
        {
            TryGet(map, k, out var v);
            yield return new KeyValuePair<Value, Value>(k, v);
        }
    }
}

/// <summary>Human-readable rendering of values for messages and tests.</summary>
internal static class Format
{
    public static string Display(in Value v) => v.Kind switch
    {
        Kind.Error => "error(" + v.ErrorMessage + ")",
        Kind.Null => "null",
        Kind.Bool => v.AsBool ? "true" : "false",
        Kind.Int => v.AsInt.ToString(CultureInfo.InvariantCulture),
        Kind.Uint => v.AsUint.ToString(CultureInfo.InvariantCulture) + "u",
        Kind.Double => v.AsDouble.ToString("R", CultureInfo.InvariantCulture),
        Kind.String => "\"" + v.AsString + "\"",
        Kind.Bytes => "b\"" + Convert.ToHexString(v.AsBytes) + "\"",
        Kind.List => "[" + string.Join(", ", ListOps.ToArray(v).Select(x => Display(x))) + "]",
        Kind.Map => "{" + string.Join(", ", MapOps.Entries(v).Select(e => Display(e.Key) + ": " + Display(e.Value))) + "}",
        Kind.Timestamp => new DateTime(v.Bits, DateTimeKind.Utc).ToString("O", CultureInfo.InvariantCulture),
        Kind.Duration => v.Bits.ToString(CultureInfo.InvariantCulture) + "ns",
        Kind.Type => (string)v.Obj!,
        Kind.Message => ((MessageValue)v.Obj!).TypeName + "{...}",
        _ => "?",
    };
}
