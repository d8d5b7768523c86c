namespace Warden.Core.Conditions;

/// <summary>
/// Top-level argument reads (<c>args.NAME</c>) and their memberships in named lists, shared by every condition the
/// policy evaluates for one call: a policy with many rules reads the same few arguments again and again, and the
/// JSON look-up, number conversion and list hashing are most of a simple condition's cost. Valid for one set of
/// arguments only: the policy rents one per decision and returns it when the decision is made. Field names are
/// interned at compile time so entries are found by reference.
/// </summary>
internal sealed class ArgCache
{
    /// <summary>Distinct fields remembered per decision; reads past this are not cached (still correct).</summary>
    private const int Capacity = 16;

    [ThreadStatic]
    private static ArgCache? t_free;

    private readonly Entry[] _entries = new Entry[Capacity];
    private int _count;

    // Results of whole conditions that several rules share, per decision: (decision number << 2) | Tri answer, so
    // a new decision invalidates every slot by counting up instead of clearing.
    private int[] _memo = [];
    private int _decision;

    internal struct Entry
    {
        public string Field;
        public Value Value;
        public bool Present;
        public object? List0;
        public bool Member0;
        public object? List1;
        public bool Member1;

        /// <summary>0: not computed; 1: <see cref="RawHash"/> is the hash of the string's unescaped UTF-8; 2: not such a string.</summary>
        public byte RawHashState;
        public ulong RawHash;
    }

    /// <summary>An empty cache for one decision (per thread; a nested decision on the same thread gets its own).</summary>
    public static ArgCache Rent()
    {
        var c = t_free ?? new ArgCache();
        t_free = null;
        if (++c._decision >= 1 << 28)
        {
            Array.Clear(c._memo);
            c._decision = 1;
        }

        return c;
    }

    /// <summary>Clears and keeps the cache for the next decision on this thread.</summary>
    public static void Return(ArgCache cache)
    {
        // Cleared so the thread does not keep argument documents alive.
        Array.Clear(cache._entries, 0, cache._count);
        cache._count = 0;
        t_free = cache;
    }

    /// <summary>The index of the entry for a field, read on first use; -1 when the cache is full (the caller reads directly).</summary>
    public int IndexOf(ref Frame f, string field)
    {
        var entries = _entries;
        for (var i = 0; i < _count; i++)
        {
            if (ReferenceEquals(entries[i].Field, field))
            {
                return i;
            }
        }

        if (_count == Capacity)
        {
            return -1;
        }

        ref var e = ref entries[_count];
        e.Field = field;
        e.Present = Emitter.ArgsField(ref f, field, out e.Value);
        return _count++;
    }

    public ref Entry At(int index) => ref _entries[index];

    /// <summary>Makes room for <paramref name="slots"/> shared-condition results (allocates only when a policy needs more than any before on this thread).</summary>
    public void EnsureMemo(int slots)
    {
        if (_memo.Length < slots)
        {
            Array.Resize(ref _memo, slots);
        }
    }

    /// <summary>The remembered answer (<see cref="Tri"/>) of a shared condition in this decision, or -1.</summary>
    public int Memo(int slot)
    {
        var m = _memo[slot];
        return m >> 2 == _decision ? m & 3 : -1;
    }

    public void Remember(int slot, int tri) => _memo[slot] = (_decision << 2) | tri;
}
