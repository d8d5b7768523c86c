using System.Globalization;
using System.Text;

namespace Warden.Core.Tests.Conditions.CelSpec;

/// <summary>A parsed protobuf text-format message: an ordered list of fields, each a scalar token or a nested message.</summary>
public sealed class PbMessage
{
    public List<(string Name, object Value)> Fields { get; } = [];

    public IEnumerable<object> All(string name) => Fields.Where(f => f.Name == name).Select(f => f.Value);

    public object? Get(string name) => Fields.FirstOrDefault(f => f.Name == name).Value;

    public PbMessage? Msg(string name) => Get(name) as PbMessage;

    public string? Str(string name) => Get(name) is PbScalar s ? s.AsString() : null;

    public bool Has(string name) => Fields.Any(f => f.Name == name);
}

/// <summary>A scalar: either a quoted string (kept as bytes, since text format escapes are byte-level) or a bare token.</summary>
public sealed class PbScalar
{
    public byte[]? Bytes { get; init; }

    public string? Token { get; init; }

    public string AsString() => Bytes != null ? Encoding.UTF8.GetString(Bytes) : Token!;
}

/// <summary>Minimal reader for protobuf text format as used by the cel-spec SimpleTestFile data.</summary>
public sealed class TextProtoReader
{
    private readonly string _s;
    private int _i;

    private TextProtoReader(string s) => _s = s;

    public static PbMessage Parse(string text)
    {
        var r = new TextProtoReader(text);
        var m = r.ReadFields(null);
        return m;
    }

    private PbMessage ReadFields(char? close)
    {
        var m = new PbMessage();
        while (true)
        {
            Skip();
            if (_i >= _s.Length)
            {
                if (close != null)
                {
                    throw new FormatException("unexpected end of text proto");
                }

                return m;
            }

            if (close != null && _s[_i] == close)
            {
                _i++;
                return m;
            }

            string name;
            if (_s[_i] == '[')
            {
                var end = _s.IndexOf(']', _i);
                name = _s[_i..(end + 1)];
                _i = end + 1;
            }
            else
            {
                var st = _i;
                while (_i < _s.Length && (char.IsLetterOrDigit(_s[_i]) || _s[_i] == '_'))
                {
                    _i++;
                }

                name = _s[st.._i];
                if (name.Length == 0)
                {
                    throw new FormatException($"bad field at {_i}: '{_s.Substring(_i, Math.Min(20, _s.Length - _i))}'");
                }
            }

            Skip();
            if (_s[_i] == ':')
            {
                _i++;
                Skip();
            }

            if (_s[_i] is '{' or '<')
            {
                var c = _s[_i] == '{' ? '}' : '>';
                _i++;
                m.Fields.Add((name, ReadFields(c)));
            }
            else if (_s[_i] is '"' or '\'')
            {
                var bytes = new List<byte>();
                while (_i < _s.Length && _s[_i] is '"' or '\'')
                {
                    bytes.AddRange(ReadString());
                    Skip();
                }

                m.Fields.Add((name, new PbScalar { Bytes = bytes.ToArray() }));
            }
            else
            {
                var st = _i;
                while (_i < _s.Length && !char.IsWhiteSpace(_s[_i]) && _s[_i] is not (',' or ';' or '}' or '>'))
                {
                    _i++;
                }

                m.Fields.Add((name, new PbScalar { Token = _s[st.._i] }));
            }

            Skip();
            if (_i < _s.Length && _s[_i] is ',' or ';')
            {
                _i++;
            }
        }
    }

    private void Skip()
    {
        while (_i < _s.Length)
        {
            if (char.IsWhiteSpace(_s[_i]))
            {
                _i++;
            }
            else if (_s[_i] == '#')
            {
                while (_i < _s.Length && _s[_i] != '\n')
                {
                    _i++;
                }
            }
            else
            {
                return;
            }
        }
    }

    private List<byte> ReadString()
    {
        var q = _s[_i++];
        var b = new List<byte>();
        while (_s[_i] != q)
        {
            var c = _s[_i];
            if (c != '\\')
            {
                var len = char.IsHighSurrogate(c) ? 2 : 1;
                b.AddRange(Encoding.UTF8.GetBytes(_s.Substring(_i, len)));
                _i += len;
                continue;
            }

            _i++;
            var e = _s[_i++];
            switch (e)
            {
                case 'n': b.Add(10); break;
                case 'r': b.Add(13); break;
                case 't': b.Add(9); break;
                case 'a': b.Add(7); break;
                case 'b': b.Add(8); break;
                case 'f': b.Add(12); break;
                case 'v': b.Add(11); break;
                case '\\': b.Add((byte)'\\'); break;
                case '\'': b.Add((byte)'\''); break;
                case '"': b.Add((byte)'"'); break;
                case '?': b.Add((byte)'?'); break;
                case 'x':
                {
                    var st = _i;
                    while (_i < _s.Length && _i - st < 2 && char.IsAsciiHexDigit(_s[_i]))
                    {
                        _i++;
                    }

                    b.Add(byte.Parse(_s[st.._i], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                    break;
                }

                case 'u':
                case 'U':
                {
                    var n = e == 'u' ? 4 : 8;
                    var cp = int.Parse(_s.AsSpan(_i, n), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                    _i += n;
                    b.AddRange(Encoding.UTF8.GetBytes(char.ConvertFromUtf32(cp)));
                    break;
                }

                default:
                    if (e is >= '0' and <= '7')
                    {
                        var v = e - '0';
                        for (var k = 0; k < 2 && _i < _s.Length && _s[_i] is >= '0' and <= '7'; k++)
                        {
                            v = (v * 8) + (_s[_i++] - '0');
                        }

                        b.Add((byte)v);
                    }
                    else
                    {
                        throw new FormatException($"bad escape \\{e}");
                    }

                    break;
            }
        }

        _i++;
        return b;
    }
}
