using System.Globalization;
using System.Text;

namespace Warden.Core.Conditions;

/// <summary>CEL operator semantics over <see cref="Value"/>: equality, ordering, arithmetic and conversions.</summary>
internal static class Ops
{
    /// <summary>Deepest nesting that equality will recurse into; deeper values are an error, not a stack overflow.</summary>
    public const int MaxDepth = 512;

    public static readonly Value CostExceeded = Value.Error("evaluation cost limit exceeded");
    public static readonly Value NoOverload = Value.Error("no matching overload");
    public static readonly Value DivByZero = Value.Error("division by zero");
    public static readonly Value ModByZero = Value.Error("modulus by zero");
    public static readonly Value Overflow = Value.Error("return error for overflow");
    public static readonly Value TooDeep = Value.Error("value nested too deeply");

    private const long NanosPerTick = 100;

    public static bool IsNumeric(Kind k) => k is Kind.Int or Kind.Uint or Kind.Double;

    /// <summary>CEL heterogeneous equality: values of different types are unequal, numbers compare by value.</summary>
    public static Value Equal(in Value a, in Value b, ref long budget, int depth)
    {
        if (a.IsError)
        {
            return a;
        }

        if (b.IsError)
        {
            return b;
        }

        if (depth > MaxDepth)
        {
            return TooDeep;
        }

        if ((depth & 31) == 31)
        {
            System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
        }

        if (IsNumeric(a.Kind) && IsNumeric(b.Kind))
        {
            var c = CompareNumbers(a, b);
            return Value.Bool(c == 0);
        }

        if (a.Kind != b.Kind)
        {
            return Value.False;
        }

        switch (a.Kind)
        {
            case Kind.Null: return Value.True;
            case Kind.Bool:
            case Kind.Timestamp:
            case Kind.Duration:
                return Value.Bool(a.Bits == b.Bits);
            case Kind.String: return Value.Bool(Str.Equal(a, b));
            case Kind.Bytes: return Value.Bool(a.AsBytes.AsSpan().SequenceEqual(b.AsBytes));
            case Kind.Type: return Value.Bool((string)a.Obj! == (string)b.Obj!);
            case Kind.List:
            {
                var n = ListOps.Count(a);
                if (n != ListOps.Count(b))
                {
                    return Value.False;
                }

                budget -= n;
                if (budget < 0)
                {
                    return CostExceeded;
                }

                for (var i = 0; i < n; i++)
                {
                    var r = Equal(ListOps.Get(a, i), ListOps.Get(b, i), ref budget, depth + 1);
                    if (r.IsError || !r.AsBool)
                    {
                        return r;
                    }
                }

                return Value.True;
            }

            case Kind.Map:
            {
                if (MapOps.Count(a) != MapOps.Count(b))
                {
                    return Value.False;
                }

                foreach (var k in MapOps.Keys(a))
                {
                    if (--budget < 0)
                    {
                        return CostExceeded;
                    }

                    if (!MapOps.TryGet(b, k, out var bv))
                    {
                        return Value.False;
                    }

                    MapOps.TryGet(a, k, out var av);
                    var r = Equal(av, bv, ref budget, depth + 1);
                    if (r.IsError || !r.AsBool)
                    {
                        return r;
                    }
                }

                return Value.True;
            }

            case Kind.Message:
            {
                var ma = (MessageValue)a.Obj!;
                var mb = (MessageValue)b.Obj!;
                if (ma.TypeName != mb.TypeName || ma.Fields.Count != mb.Fields.Count)
                {
                    return Value.False;
                }

                foreach (var (k, av) in ma.Fields)
                {
                    if (!mb.Fields.TryGetValue(k, out var bv))
                    {
                        return Value.False;
                    }

                    var r = Equal(av, bv, ref budget, depth + 1);
                    if (r.IsError || !r.AsBool)
                    {
                        return r;
                    }
                }

                return Value.True;
            }
        }

        return Value.False;
    }

    /// <summary>Numeric comparison across int, uint and double without precision loss.</summary>
    public static int? CompareNumbers(in Value a, in Value b)
    {
        switch (a.Kind, b.Kind)
        {
            case (Kind.Int, Kind.Int): return a.AsInt.CompareTo(b.AsInt);
            case (Kind.Uint, Kind.Uint): return a.AsUint.CompareTo(b.AsUint);
            case (Kind.Double, Kind.Double):
                var x = a.AsDouble;
                var y = b.AsDouble;
                return double.IsNaN(x) || double.IsNaN(y) ? null : x.CompareTo(y);
            case (Kind.Int, Kind.Uint): return a.AsInt < 0 ? -1 : ((ulong)a.AsInt).CompareTo(b.AsUint);
            case (Kind.Uint, Kind.Int): return b.AsInt < 0 ? 1 : a.AsUint.CompareTo((ulong)b.AsInt);
            case (Kind.Int, Kind.Double): return CompareIntDouble(a.AsInt, b.AsDouble);
            case (Kind.Double, Kind.Int): return -CompareIntDouble(b.AsInt, a.AsDouble);
            case (Kind.Uint, Kind.Double): return CompareUintDouble(a.AsUint, b.AsDouble);
            case (Kind.Double, Kind.Uint): return -CompareUintDouble(b.AsUint, a.AsDouble);
        }

        return null;
    }

    // Same rules as cel-go: out-of-range doubles order outside the integer range, otherwise compare as doubles.
    private static int? CompareIntDouble(long i, double d)
    {
        if (double.IsNaN(d))
        {
            return null;
        }

        if (d < long.MinValue)
        {
            return 1;
        }

        if (d > long.MaxValue)
        {
            return -1;
        }

        return ((double)i).CompareTo(d);
    }

    private static int? CompareUintDouble(ulong u, double d)
    {
        if (double.IsNaN(d))
        {
            return null;
        }

        if (d < 0)
        {
            return 1;
        }

        if (d > ulong.MaxValue)
        {
            return -1;
        }

        return ((double)u).CompareTo(d);
    }

    /// <summary>Ordering for &lt;, &lt;=, &gt;, &gt;=. Returns an error value when the operands are not comparable.</summary>
    public static Value Compare(in Value a, in Value b, Func<int, bool> test)
    {
        var c = CompareRaw(a, b, out var err);
        if (err.Kind == Kind.Error)
        {
            return err;
        }

        return c is null ? Value.False : Value.Bool(test(c.Value));
    }

    public static int? CompareRaw(in Value a, in Value b, out Value error)
    {
        error = Value.Null;
        if (a.IsError)
        {
            error = a;
            return null;
        }

        if (b.IsError)
        {
            error = b;
            return null;
        }

        if (IsNumeric(a.Kind) && IsNumeric(b.Kind))
        {
            return CompareNumbers(a, b);
        }

        if (a.Kind == b.Kind)
        {
            switch (a.Kind)
            {
                case Kind.Bool:
                case Kind.Timestamp:
                case Kind.Duration:
                    return a.Bits.CompareTo(b.Bits);
                case Kind.String:
                {
                    return Str.Compare(Str.Chars(a, 0), Str.Chars(b, 1));
                }

                case Kind.Bytes: return a.AsBytes.AsSpan().SequenceCompareTo(b.AsBytes);
            }
        }

        error = NoOverload;
        return null;
    }

    public static Value Add(in Value a, in Value b, ref long budget)
    {
        if (a.IsError)
        {
            return a;
        }

        if (b.IsError)
        {
            return b;
        }

        switch (a.Kind, b.Kind)
        {
            case (Kind.Int, Kind.Int):
                return long.MaxValue - Math.Max(0, b.AsInt) < a.AsInt || long.MinValue - Math.Min(0, b.AsInt) > a.AsInt
                    ? Overflow
                    : Value.Int(a.AsInt + b.AsInt);
            case (Kind.Uint, Kind.Uint):
                var u = unchecked(a.AsUint + b.AsUint);
                return u < a.AsUint ? Overflow : Value.Uint(u);
            case (Kind.Double, Kind.Double): return Value.Double(a.AsDouble + b.AsDouble);
            case (Kind.String, Kind.String):
            {
                var s1 = a.AsString;
                var s2 = b.AsString;
                budget -= s1.Length + s2.Length;
                return budget < 0 ? CostExceeded : Value.String(s1 + s2);
            }

            case (Kind.Bytes, Kind.Bytes):
            {
                budget -= a.AsBytes.Length + b.AsBytes.Length;
                return budget < 0 ? CostExceeded : Value.Bytes([.. a.AsBytes, .. b.AsBytes]);
            }

            case (Kind.List, Kind.List):
            {
                var x = ListOps.ToArray(a);
                var y = ListOps.ToArray(b);
                budget -= x.Length + y.Length;
                return budget < 0 ? CostExceeded : Value.List(x.Concat(y).ToArray());
            }

            case (Kind.Timestamp, Kind.Duration): return AddTimestamp(a.Bits, b.Bits);
            case (Kind.Duration, Kind.Timestamp): return AddTimestamp(b.Bits, a.Bits);
            case (Kind.Duration, Kind.Duration):
                return CheckedLong(a.Bits, b.Bits, add: true, out var r) ? Value.Duration(r) : Overflow;
        }

        return NoOverload;
    }

    private static Value AddTimestamp(long ticks, long nanos)
    {
        var t = (decimal)ticks + (decimal)nanos / NanosPerTick;
        return t < DateTime.MinValue.Ticks || t > DateTime.MaxValue.Ticks ? Overflow : Value.Timestamp((long)t);
    }

    private static bool CheckedLong(long a, long b, bool add, out long r)
    {
        try
        {
            r = add ? checked(a + b) : checked(a - b);
            return true;
        }
        catch (OverflowException)
        {
            r = 0;
            return false;
        }
    }

    public static Value Subtract(in Value a, in Value b)
    {
        if (a.IsError)
        {
            return a;
        }

        if (b.IsError)
        {
            return b;
        }

        switch (a.Kind, b.Kind)
        {
            case (Kind.Int, Kind.Int):
                return CheckedLong(a.AsInt, b.AsInt, add: false, out var r) ? Value.Int(r) : Overflow;
            case (Kind.Uint, Kind.Uint):
                return b.AsUint > a.AsUint ? Overflow : Value.Uint(a.AsUint - b.AsUint);
            case (Kind.Double, Kind.Double): return Value.Double(a.AsDouble - b.AsDouble);
            case (Kind.Timestamp, Kind.Timestamp):
            {
                var d = ((decimal)a.Bits - b.Bits) * NanosPerTick;
                return d > long.MaxValue || d < long.MinValue ? Overflow : Value.Duration((long)d);
            }

            case (Kind.Timestamp, Kind.Duration):
                return b.Bits == long.MinValue ? Overflow : AddTimestamp(a.Bits, -b.Bits);
            case (Kind.Duration, Kind.Duration):
                return CheckedLong(a.Bits, b.Bits, add: false, out var d2) ? Value.Duration(d2) : Overflow;
        }

        return NoOverload;
    }

    public static Value Multiply(in Value a, in Value b)
    {
        if (a.IsError)
        {
            return a;
        }

        if (b.IsError)
        {
            return b;
        }

        switch (a.Kind, b.Kind)
        {
            case (Kind.Int, Kind.Int):
                var p = Math.BigMul(a.AsInt, b.AsInt, out var low);
                return (p == 0 && low >= 0) || (p == -1 && low < 0) ? Value.Int(low) : Overflow;
            case (Kind.Uint, Kind.Uint):
                var hi = Math.BigMul(a.AsUint, b.AsUint, out var ulow);
                return hi == 0 ? Value.Uint(ulow) : Overflow;
            case (Kind.Double, Kind.Double): return Value.Double(a.AsDouble * b.AsDouble);
        }

        return NoOverload;
    }

    public static Value Divide(in Value a, in Value b)
    {
        if (a.IsError)
        {
            return a;
        }

        if (b.IsError)
        {
            return b;
        }

        switch (a.Kind, b.Kind)
        {
            case (Kind.Int, Kind.Int):
                if (b.AsInt == 0)
                {
                    return DivByZero;
                }

                return a.AsInt == long.MinValue && b.AsInt == -1 ? Overflow : Value.Int(a.AsInt / b.AsInt);
            case (Kind.Uint, Kind.Uint):
                return b.AsUint == 0 ? DivByZero : Value.Uint(a.AsUint / b.AsUint);
            case (Kind.Double, Kind.Double): return Value.Double(a.AsDouble / b.AsDouble);
        }

        return NoOverload;
    }

    public static Value Modulo(in Value a, in Value b)
    {
        if (a.IsError)
        {
            return a;
        }

        if (b.IsError)
        {
            return b;
        }

        switch (a.Kind, b.Kind)
        {
            case (Kind.Int, Kind.Int):
                if (b.AsInt == 0)
                {
                    return ModByZero;
                }

                return a.AsInt == long.MinValue && b.AsInt == -1 ? Overflow : Value.Int(a.AsInt % b.AsInt);
            case (Kind.Uint, Kind.Uint):
                return b.AsUint == 0 ? ModByZero : Value.Uint(a.AsUint % b.AsUint);
        }

        return NoOverload;
    }

    public static Value Negate(in Value a)
    {
        return a.Kind switch
        {
            Kind.Error => a,
            Kind.Int => a.AsInt == long.MinValue ? Overflow : Value.Int(-a.AsInt),
            Kind.Double => Value.Double(-a.AsDouble),
            Kind.Duration => a.Bits == long.MinValue ? Overflow : Value.Duration(-a.Bits),
            _ => NoOverload,
        };
    }

    public static Value Not(in Value a) => a.Kind switch
    {
        Kind.Error => a,
        Kind.Bool => Value.Bool(!a.AsBool),
        _ => NoOverload,
    };

    public static Value Size(in Value v) => v.Kind switch
    {
        Kind.Error => v,
        Kind.String => Value.Int(Str.CodePoints(v)),
        Kind.Bytes => Value.Int(v.AsBytes.Length),
        Kind.List => Value.Int(ListOps.Count(v)),
        Kind.Map => Value.Int(MapOps.Count(v)),
        _ => NoOverload,
    };

    // ---- conversions ----

    public static Value ToInt(in Value v)
    {
        switch (v.Kind)
        {
            case Kind.Error:
            case Kind.Int: return v;
            case Kind.Uint: return v.AsUint > long.MaxValue ? Value.Error("range error") : Value.Int((long)v.AsUint);
            case Kind.Double:
                var d = v.AsDouble;
                if (double.IsNaN(d) || d <= -9.2233720368547758E18 || d >= 9.2233720368547758E18)
                {
                    return Value.Error("range error");
                }

                return Value.Int((long)d);
            case Kind.String:
                return long.TryParse(v.AsString, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)
                    ? Value.Int(l)
                    : Value.Error("cannot convert string to int");
            case Kind.Timestamp:
                return Value.Int((v.Bits - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerSecond - (v.Bits < DateTime.UnixEpoch.Ticks && (v.Bits - DateTime.UnixEpoch.Ticks) % TimeSpan.TicksPerSecond != 0 ? 1 : 0));
        }

        return NoOverload;
    }

    public static Value ToUint(in Value v)
    {
        switch (v.Kind)
        {
            case Kind.Error:
            case Kind.Uint: return v;
            case Kind.Int: return v.AsInt < 0 ? Value.Error("range error") : Value.Uint((ulong)v.AsInt);
            case Kind.Double:
                var d = v.AsDouble;
                if (double.IsNaN(d) || d < 0 || d >= 1.8446744073709552E19)
                {
                    return Value.Error("range error");
                }

                return Value.Uint((ulong)d);
            case Kind.String:
                return ulong.TryParse(v.AsString, NumberStyles.None, CultureInfo.InvariantCulture, out var u)
                    ? Value.Uint(u)
                    : Value.Error("cannot convert string to uint");
        }

        return NoOverload;
    }

    public static Value ToDouble(in Value v)
    {
        switch (v.Kind)
        {
            case Kind.Error:
            case Kind.Double: return v;
            case Kind.Int: return Value.Double(v.AsInt);
            case Kind.Uint: return Value.Double(v.AsUint);
            case Kind.String:
                var s = v.AsString;
                if (s is "NaN" or "nan")
                {
                    return Value.Double(double.NaN);
                }

                if (s is "Infinity" or "inf" or "+inf" or "+Infinity")
                {
                    return Value.Double(double.PositiveInfinity);
                }

                if (s is "-Infinity" or "-inf")
                {
                    return Value.Double(double.NegativeInfinity);
                }

                return double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
                    ? Value.Double(d)
                    : Value.Error("cannot convert string to double");
        }

        return NoOverload;
    }

    public static Value ToStringValue(in Value v)
    {
        switch (v.Kind)
        {
            case Kind.Error:
            case Kind.String: return v;
            case Kind.Int: return Value.String(v.AsInt.ToString(CultureInfo.InvariantCulture));
            case Kind.Uint: return Value.String(v.AsUint.ToString(CultureInfo.InvariantCulture));
            case Kind.Double: return Value.String(FormatDouble(v.AsDouble));
            case Kind.Bool: return Value.String(v.AsBool ? "true" : "false");
            case Kind.Bytes:
                try
                {
                    return Value.String(new UTF8Encoding(false, true).GetString(v.AsBytes));
                }
                catch (DecoderFallbackException)
                {
                    return Value.Error("invalid UTF-8 in bytes");
                }

            case Kind.Timestamp: return Value.String(FormatTimestamp(v.Bits));
            case Kind.Duration: return Value.String(FormatDuration(v.Bits));
        }

        return NoOverload;
    }

    public static string FormatDouble(double d)
    {
        if (double.IsNaN(d))
        {
            return "NaN";
        }

        if (double.IsPositiveInfinity(d))
        {
            return "+Inf";
        }

        if (double.IsNegativeInfinity(d))
        {
            return "-Inf";
        }

        var s = d.ToString("R", CultureInfo.InvariantCulture);
        return s.Replace("E+", "e+", StringComparison.Ordinal).Replace("E-", "e-", StringComparison.Ordinal);
    }

    public static string FormatTimestamp(long ticks)
    {
        var dt = new DateTime(ticks, DateTimeKind.Utc);
        var frac = ticks % TimeSpan.TicksPerSecond;
        var basePart = dt.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture);
        if (frac == 0)
        {
            return basePart + "Z";
        }

        var f = (frac * 100).ToString("D9", CultureInfo.InvariantCulture).TrimEnd('0');
        var digits = f.Length <= 3 ? 3 : f.Length <= 6 ? 6 : 9;
        return basePart + "." + f.PadRight(digits, '0') + "Z";
    }

    public static string FormatDuration(long nanos)
    {
        var seconds = (decimal)nanos / 1_000_000_000m;
        return seconds.ToString(CultureInfo.InvariantCulture).TrimEnd('0').TrimEnd('.') is var s && s.Contains('.', StringComparison.Ordinal)
            ? s + "s"
            : ((long)seconds).ToString(CultureInfo.InvariantCulture) + "s";
    }

    public static Value ToBytes(in Value v) => v.Kind switch
    {
        Kind.Error or Kind.Bytes => v,
        Kind.String => Value.Bytes(Encoding.UTF8.GetBytes(v.AsString)),
        _ => NoOverload,
    };

    public static Value ToBool(in Value v)
    {
        switch (v.Kind)
        {
            case Kind.Error:
            case Kind.Bool: return v;
            case Kind.String:
                switch (v.AsString)
                {
                    case "true" or "True" or "TRUE" or "t" or "1": return Value.True;
                    case "false" or "False" or "FALSE" or "f" or "0": return Value.False;
                }

                return Value.Error("cannot convert string to bool");
        }

        return NoOverload;
    }

    public static Value ToTimestamp(in Value v)
    {
        switch (v.Kind)
        {
            case Kind.Error:
            case Kind.Timestamp: return v;
            case Kind.Int:
            {
                var t = (decimal)v.AsInt * TimeSpan.TicksPerSecond + DateTime.UnixEpoch.Ticks;
                return t < DateTime.MinValue.Ticks || t > DateTime.MaxValue.Ticks ? Value.Error("range error") : Value.Timestamp((long)t);
            }

            case Kind.String:
                return TryParseTimestamp(v.AsString, out var ticks) ? Value.Timestamp(ticks) : Value.Error("invalid timestamp");
        }

        return NoOverload;
    }

    public static bool TryParseTimestamp(string s, out long ticks)
    {
        if (DateTimeOffset.TryParseExact(
                s,
                ["yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK"],
                CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal,
                out var dto))
        {
            ticks = dto.UtcTicks;
            return true;
        }

        // Up to nanosecond fractions are valid CEL; .NET keeps 100 ns, so extra digits are truncated.
        var dot = s.IndexOf('.', StringComparison.Ordinal);
        if (dot > 0)
        {
            var end = dot + 1;
            while (end < s.Length && char.IsAsciiDigit(s[end]))
            {
                end++;
            }

            if (end - dot - 1 > 7 && end - dot - 1 <= 9)
            {
                return TryParseTimestamp(s[..(dot + 8)] + s[end..], out ticks);
            }
        }

        ticks = 0;
        return false;
    }

    public static Value ToDuration(in Value v)
    {
        switch (v.Kind)
        {
            case Kind.Error:
            case Kind.Duration: return v;
            case Kind.String:
                return TryParseDuration(v.AsString, out var n) ? Value.Duration(n) : Value.Error("invalid duration");
        }

        return NoOverload;
    }

    /// <summary>Parses Go-style durations: <c>1h2m3.5s</c>, <c>-10ms</c>, <c>100ns</c>.</summary>
    public static bool TryParseDuration(string s, out long nanos)
    {
        nanos = 0;
        var i = 0;
        var neg = false;
        if (i < s.Length && (s[i] == '-' || s[i] == '+'))
        {
            neg = s[i] == '-';
            i++;
        }

        if (i >= s.Length)
        {
            return false;
        }

        if (s[i..] == "0")
        {
            return true;
        }

        decimal total = 0;
        while (i < s.Length)
        {
            var start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
            {
                i++;
            }

            if (start == i || !decimal.TryParse(s.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var num))
            {
                return false;
            }

            var us = i;
            while (i < s.Length && !char.IsAsciiDigit(s[i]) && s[i] != '.')
            {
                i++;
            }

            decimal unit = s[us..i] switch
            {
                "h" => 3_600_000_000_000m,
                "m" => 60_000_000_000m,
                "s" => 1_000_000_000m,
                "ms" => 1_000_000m,
                "us" or "µs" => 1_000m,
                "ns" => 1m,
                _ => -1m,
            };
            if (unit < 0)
            {
                return false;
            }

            total += num * unit;
            if (total > 315_576_000_000_999_999_999m)
            {
                return false;
            }
        }

        total = neg ? -total : total;
        if (total > long.MaxValue || total < long.MinValue)
        {
            return false;
        }

        nanos = (long)total;
        return true;
    }
}
