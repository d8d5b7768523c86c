using System.Collections;
using System.Runtime.CompilerServices;

namespace Warden.Core.DataGuard;

/// <summary>
/// An immutable set of fingerprints, built for the one question the argument scan asks for every token of every
/// outbound call: "is this hash in the set?". Open addressing in one flat array (load at most one half), so a lookup
/// is a multiply, a shift and usually one cache line, with no interface dispatch or comparer in the way.
/// </summary>
/// <remarks>
/// Readers on the hot path hold a set without locking: a change builds a new set (<see cref="Union"/>) and publishes it.
/// </remarks>
public sealed class FingerprintSet : IReadOnlySet<ulong>
{
    /// <summary>The empty set.</summary>
    public static readonly FingerprintSet Empty = new([], 0, 0, hasZero: false);

    // 0 marks an empty slot; the value 0 itself is kept aside in _hasZero.
    private readonly ulong[] _slots;
    private readonly int _shift;
    private readonly bool _hasZero;

    private FingerprintSet(ulong[] slots, int shift, int count, bool hasZero)
    {
        _slots = slots;
        _shift = shift;
        Count = count;
        _hasZero = hasZero;
    }

    /// <inheritdoc />
    public int Count { get; }

    /// <summary>A set of these values (duplicates are kept once).</summary>
    public static FingerprintSet Create(IEnumerable<ulong> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values is FingerprintSet f)
        {
            return f;
        }

        var list = values as IReadOnlyCollection<ulong> ?? values.ToList();
        if (list.Count == 0)
        {
            return Empty;
        }

        var b = new Builder(list.Count);
        foreach (var v in list)
        {
            b.Add(v);
        }

        return b.Build();
    }

    /// <summary>This set with more values, at most <paramref name="max"/> in all (this one when nothing is new).</summary>
    public FingerprintSet Union(IReadOnlyCollection<ulong> more, int max = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(more);
        var anyNew = false;
        foreach (var v in more)
        {
            if (!Contains(v))
            {
                anyNew = true;
                break;
            }
        }

        if (!anyNew || Count >= max)
        {
            return this;
        }

        var b = new Builder(Math.Min(max, Count + more.Count));
        foreach (var v in this)
        {
            b.Add(v);
        }

        foreach (var v in more)
        {
            if (b.Count >= max)
            {
                break;
            }

            b.Add(v);
        }

        return b.Build();
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Contains(ulong item)
    {
        if (item == 0)
        {
            return _hasZero;
        }

        var slots = _slots;
        if (slots.Length == 0)
        {
            return false;
        }

        var mask = slots.Length - 1;
        var i = (int)((item * 0x9E3779B97F4A7C15UL) >> _shift);
        while (true)
        {
            var s = slots[i];
            if (s == item)
            {
                return true;
            }

            if (s == 0)
            {
                return false;
            }

            i = (i + 1) & mask;
        }
    }

    /// <inheritdoc />
    public IEnumerator<ulong> GetEnumerator()
    {
        if (_hasZero)
        {
            yield return 0;
        }

        foreach (var s in _slots)
        {
            if (s != 0)
            {
                yield return s;
            }
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc />
    public bool IsProperSubsetOf(IEnumerable<ulong> other) => new HashSet<ulong>(this).IsProperSubsetOf(other);

    /// <inheritdoc />
    public bool IsProperSupersetOf(IEnumerable<ulong> other) => new HashSet<ulong>(this).IsProperSupersetOf(other);

    /// <inheritdoc />
    public bool IsSubsetOf(IEnumerable<ulong> other) => new HashSet<ulong>(this).IsSubsetOf(other);

    /// <inheritdoc />
    public bool IsSupersetOf(IEnumerable<ulong> other) => other.All(Contains);

    /// <inheritdoc />
    public bool Overlaps(IEnumerable<ulong> other) => other.Any(Contains);

    /// <inheritdoc />
    public bool SetEquals(IEnumerable<ulong> other) => new HashSet<ulong>(this).SetEquals(other);

    private struct Builder
    {
        private readonly ulong[] _slots;
        private readonly int _shift;
        private bool _hasZero;

        public Builder(int capacity)
        {
            // At most half full: a miss (the common case on the hot path) ends after a probe or two.
            var size = (int)Math.Max(16, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(1, capacity) * 2));
            _slots = new ulong[size];
            _shift = 64 - System.Numerics.BitOperations.Log2((uint)size);
            Count = 0;
            _hasZero = false;
        }

        public int Count { get; private set; }

        public void Add(ulong v)
        {
            if (v == 0)
            {
                if (!_hasZero)
                {
                    _hasZero = true;
                    Count++;
                }

                return;
            }

            var mask = _slots.Length - 1;
            var i = (int)((v * 0x9E3779B97F4A7C15UL) >> _shift);
            while (true)
            {
                var s = _slots[i];
                if (s == v)
                {
                    return;
                }

                if (s == 0)
                {
                    _slots[i] = v;
                    Count++;
                    return;
                }

                i = (i + 1) & mask;
            }
        }

        public readonly FingerprintSet Build() => new(_slots, _shift, Count, _hasZero);
    }
}
