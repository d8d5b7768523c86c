namespace Warden.Core.Conditions;

internal enum TKind : byte
{
    Dyn,
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
    Struct,
    Message,
}

/// <summary>A static type used by the checker. Dyn is compatible with everything (JSON arguments are Dyn).</summary>
internal sealed class CelType
{
    private CelType(TKind kind, CelType? a = null, CelType? b = null, string? name = null, IReadOnlyDictionary<string, CelType>? fields = null)
    {
        Kind = kind;
        Elem = a;
        Value = b;
        Name = name;
        Fields = fields;
    }

    public TKind Kind { get; }

    /// <summary>List element type or map key type.</summary>
    public CelType? Elem { get; }

    /// <summary>Map value type.</summary>
    public CelType? Value { get; }

    public string? Name { get; }

    public IReadOnlyDictionary<string, CelType>? Fields { get; }

    public static readonly CelType Dyn = new(TKind.Dyn);
    public static readonly CelType Null = new(TKind.Null);
    public static readonly CelType Bool = new(TKind.Bool);
    public static readonly CelType Int = new(TKind.Int);
    public static readonly CelType Uint = new(TKind.Uint);
    public static readonly CelType Double = new(TKind.Double);
    public static readonly CelType String = new(TKind.String);
    public static readonly CelType Bytes = new(TKind.Bytes);
    public static readonly CelType Timestamp = new(TKind.Timestamp);
    public static readonly CelType Duration = new(TKind.Duration);
    public static readonly CelType TypeT = new(TKind.Type);
    public static readonly CelType DynList = new(TKind.List, Dyn);
    public static readonly CelType DynMap = new(TKind.Map, Dyn, Dyn);
    public static readonly CelType StringList = new(TKind.List, String);
    public static readonly CelType Message = new(TKind.Message);

    public static CelType List(CelType elem) => elem.Kind == TKind.Dyn ? DynList : new(TKind.List, elem);

    public static CelType Map(CelType key, CelType value) => new(TKind.Map, key, value);

    public static CelType Struct(string name, IReadOnlyDictionary<string, CelType> fields) => new(TKind.Struct, name: name, fields: fields);

    public bool IsDyn => Kind == TKind.Dyn;

    public bool IsNumeric => Kind is TKind.Int or TKind.Uint or TKind.Double;

    /// <summary>Whether a value of this type may be used where <paramref name="expected"/> is required.</summary>
    public bool FitsIn(CelType expected)
    {
        if (IsDyn || expected.IsDyn || Kind == expected.Kind)
        {
            return true;
        }

        // Context sub-objects behave like maps when used as values.
        return Kind == TKind.Struct && expected.Kind == TKind.Map;
    }

    /// <summary>The least specific type covering both (for list literals and conditional branches).</summary>
    public static CelType Join(CelType a, CelType b)
    {
        if (a.Kind != b.Kind)
        {
            return Dyn;
        }

        return a.Kind switch
        {
            TKind.List => List(Join(a.Elem!, b.Elem!)),
            TKind.Map => Map(Join(a.Elem!, b.Elem!), Join(a.Value!, b.Value!)),
            _ => a,
        };
    }

    public override string ToString() => Kind switch
    {
        TKind.List => $"list({Elem})",
        TKind.Map => $"map({Elem}, {Value})",
        TKind.Struct => Name!,
        TKind.Message => "message",
        TKind.Null => "null",
        _ => Kind.ToString().ToLowerInvariant(),
    };
}
