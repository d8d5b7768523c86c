using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using Warden.Core.Audit;
using Warden.Core.Storage;
using Warden.Gateway;
using Warden.Gateway.Audit;
using Warden.Storage.Sqlite;

namespace Warden.Cli.Commands;

/// <summary>
/// <c>warden audit</c>: <c>verify</c>, <c>export</c> and <c>hash</c> work offline on the data folder (read-only;
/// they need file access, not a token); <c>tail</c> and <c>query</c> ask the running gateway with an operator token.
/// </summary>
internal static class AuditCommands
{
    private static readonly string[] FilterNames = ["agent", "session", "server", "tool", "effect", "rule", "kind", "call", "from", "to", "text"];

    public static Command Create() => new("audit", "Read, search, export and verify the audit log")
    {
        Verify(),
        Export(),
        Hash(),
        Tail(),
        Query(),
    };

    private static Command Verify()
    {
        var config = CommonOptions.Config();
        var file = new Option<string?>("--file", "-f") { Description = "Verify a JSON Lines export instead of the data folder's audit.db" };
        var json = CommonOptions.Json();
        var command = new Command("verify", "Recompute the audit chain; name the first bad record and what is wrong with it (exit 1)") { config, file, json };
        command.SetAction(async (parse, ct) =>
        {
            AuditVerification result;
            string what;
            if (parse.GetValue(file) is { } path)
            {
                if (!File.Exists(path))
                {
                    throw new CliException($"no such file: {path}", 2);
                }

                what = path;
                AuditHead? head = null;
                using var reader = new StreamReader(path);
                var events = AuditExport.Read(reader, h => head = h);
                // A partial export (a time range) starts after a record it does not contain: anchor on its first prev.
                using var e = events.GetEnumerator();
                AuditHead? start = null;
                try
                {
                    if (e.MoveNext())
                    {
                        var first = e.Current;
                        if (first.Seq > 1)
                        {
                            start = new AuditHead(first.Seq - 1, first.PrevHash);
                        }

                        result = AuditVerifier.Verify(Prepend(first, e), null, start);
                    }
                    else
                    {
                        result = AuditVerifier.Verify([], null, null);
                    }
                }
                catch (FormatException ex)
                {
                    throw new CliException($"{path}: {ex.Message}", 2);
                }

                if (result.Ok && head is { } h)
                {
                    // Re-check the end against the trailer now that it has been read.
                    result = AuditVerifier.Verify([], h, new AuditHead(result.LastSeq, result.LastHash)) is { Ok: false } tail
                        ? tail with { Verified = result.Verified }
                        : result;
                }
                else if (result.Ok && start is null)
                {
                    what += " (no head trailer: truncation of the file's end cannot be detected)";
                }
            }
            else
            {
                var folder = DataFolder(parse.GetValue(config)!);
                await using var store = OpenReadOnly(folder);
                what = store.FilePath;
                result = await Task.Run(store.Verify, ct).ConfigureAwait(false);
            }

            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new AuditVerifyView(result.Ok, result.Damage.ToString().ToLowerInvariant(), result.BadSeq, result.Message, result.Verified, result.LastSeq), AuditJsonContext.Default.AuditVerifyView));
            }
            else if (result.Ok)
            {
                AnsiConsole.MarkupLine($"[green]ok[/]: {result.Verified} records verified, chain intact through record {result.LastSeq} ({Markup.Escape(what)})");
            }
            else
            {
                AnsiConsole.MarkupLine($"[red]damaged[/]: record {result.BadSeq}: {result.Damage.ToString().ToLowerInvariant()}: {Markup.Escape(result.Message)} ({Markup.Escape(what)}; {result.Verified} records verified before it)");
            }

            return result.Ok ? 0 : 1;
        });
        return command;
    }

    private static IEnumerable<AuditEvent> Prepend(AuditEvent first, IEnumerator<AuditEvent> rest)
    {
        yield return first;
        while (rest.MoveNext())
        {
            yield return rest.Current;
        }
    }

    private static Command Export()
    {
        var config = CommonOptions.Config();
        var format = new Option<string>("--format") { Description = "jsonl (one record per line, then a head trailer)", DefaultValueFactory = _ => "jsonl" };
        var from = new Option<DateTimeOffset?>("--from") { Description = "Only records at or after this time (ISO 8601)" };
        var to = new Option<DateTimeOffset?>("--to") { Description = "Only records before this time" };
        var output = new Option<string?>("--output", "-o") { Description = "Write to this file instead of standard output" };
        var command = new Command("export", "Export the audit log (offline, read-only) as JSON Lines") { config, format, from, to, output };
        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(format) != "jsonl")
            {
                throw new CliException("only --format jsonl is available", 2);
            }

            var folder = DataFolder(parse.GetValue(config)!);
            await using var store = OpenReadOnly(folder);
            var head = await store.GetHeadAsync(ct).ConfigureAwait(false);
            var ranged = parse.GetValue(from) is not null || parse.GetValue(to) is not null;
            var events = store.Read(1, head.Seq, parse.GetValue(from), parse.GetValue(to));
            long n;
            if (parse.GetValue(output) is { } path)
            {
                using var writer = new StreamWriter(path, false, new System.Text.UTF8Encoding(false));
                n = AuditExport.Write(events, writer, ranged ? null : head);
                Console.Error.WriteLine($"warden: exported {n} records to {path}");
            }
            else
            {
                using var stdout = new StreamWriter(Console.OpenStandardOutput(), new System.Text.UTF8Encoding(false)) { AutoFlush = false };
                n = AuditExport.Write(events, stdout, ranged ? null : head);
            }

            return 0;
        });
        return command;
    }

    private static Command Hash()
    {
        var config = CommonOptions.Config();
        var value = new Argument<string>("VALUE") { Description = "The value to digest, as it appeared in the arguments (a string's text; other values as compact JSON)" };
        var command = new Command("hash", "Print the keyed digest (hmac:...) the audit stores for a value, to find it in masked arguments") { value, config };
        command.SetAction(parse =>
        {
            var folder = DataFolder(parse.GetValue(config)!);
            var key = AuditKeyFile.Read(Path.Combine(folder, AuditKeyFile.FileName))
                ?? throw new CliException($"no audit key in {folder}: Warden has not recorded anything there yet", 2);
            Console.WriteLine(new AuditDigester(key).Digest(parse.GetValue(value)!));
            return 0;
        });
        return command;
    }

    private static Command Tail()
    {
        var url = CommonOptions.Url();
        var token = CommonOptions.Token();
        var json = CommonOptions.Json();
        var lines = new Option<int>("-n", "--lines") { Description = "How many recent records", DefaultValueFactory = _ => 20 };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new records as they are written" };
        var command = new Command("tail", "Show the newest audit records (through the gateway's API)") { url, token, json, lines, follow };
        command.SetAction(async (parse, ct) =>
        {
            using var api = new ApiClient(parse.GetValue(url), parse.GetValue(token));
            var page = await api.SendAsync(HttpMethod.Get, $"audit?newest=true&limit={parse.GetValue(lines)}", cancellationToken: ct).ConfigureAwait(false);
            var last = Print(page, parse.GetValue(json), header: true);
            while (parse.GetValue(follow) && !ct.IsCancellationRequested)
            {
                try
                {
                    await Task.Delay(1000, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                page = await api.SendAsync(HttpMethod.Get, $"audit?after={last}&limit=1000", cancellationToken: ct).ConfigureAwait(false);
                last = Math.Max(last, Print(page, parse.GetValue(json), header: false));
            }

            return 0;
        });
        return command;
    }

    private static Command Query()
    {
        var url = CommonOptions.Url();
        var token = CommonOptions.Token();
        var json = CommonOptions.Json();
        var filters = FilterNames
            .Select(n => new Option<string?>("--" + n) { Description = n switch
            {
                "from" => "At or after this time (ISO 8601)",
                "to" => "Before this time",
                "text" => "A substring of tool, rule, arguments, detail or actor",
                "kind" => "Event kind; call.* matches a prefix",
                _ => "Only this " + n,
            } })
            .ToList();
        var limit = new Option<int>("--limit") { Description = "At most this many records", DefaultValueFactory = _ => 100 };
        var after = new Option<long?>("--after") { Description = "Only records after this sequence number" };
        var command = new Command("query", "Search the audit log (through the gateway's API)") { url, token, json, limit, after };
        foreach (var f in filters)
        {
            command.Options.Add(f);
        }

        command.SetAction(async (parse, ct) =>
        {
            var q = new List<string> { "limit=" + parse.GetValue(limit).ToString(CultureInfo.InvariantCulture) };
            if (parse.GetValue(after) is { } a)
            {
                q.Add("after=" + a.ToString(CultureInfo.InvariantCulture));
            }

            foreach (var f in filters)
            {
                if (parse.GetValue(f) is { } v)
                {
                    q.Add(f.Name.TrimStart('-') + "=" + Uri.EscapeDataString(v));
                }
            }

            using var api = new ApiClient(parse.GetValue(url), parse.GetValue(token));
            var page = await api.SendAsync(HttpMethod.Get, "audit?" + string.Join('&', q), cancellationToken: ct).ConfigureAwait(false);
            Print(page, parse.GetValue(json), header: true);
            return 0;
        });
        return command;
    }

    /// <summary>Prints a page; returns the largest sequence number printed (or the head when none).</summary>
    private static long Print(JsonElement page, bool json, bool header)
    {
        var events = page.GetProperty("events");
        long last = page.TryGetProperty("head", out var h) && events.GetArrayLength() == 0 ? h.GetInt64() : 0;
        if (json)
        {
            foreach (var e in events.EnumerateArray())
            {
                Console.WriteLine(e.GetRawText());
                last = Math.Max(last, e.GetProperty("seq").GetInt64());
            }

            return last;
        }

        var table = new Table().AddColumns("seq", "time", "kind", "actor", "tool", "effect", "rule", "outcome", "detail");
        if (!header)
        {
            table.HideHeaders();
        }

        foreach (var e in events.EnumerateArray())
        {
            var seq = e.GetProperty("seq").GetInt64();
            last = Math.Max(last, seq);
            var server = Output.Str(e, "server");
            var tool = Output.Str(e, "tool");
            var outcome = Output.Str(e, "outcome");
            if (e.TryGetProperty("dur_us", out var d) && d.ValueKind == JsonValueKind.Number)
            {
                outcome += $" {d.GetInt64() / 1000.0:0.#} ms";
            }

            var detail = Output.Str(e, "detail");
            table.AddRow(
                seq.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(ShortTime(Output.Str(e, "time"))),
                Markup.Escape(Output.Str(e, "kind")),
                Markup.Escape(Output.Str(e, "actor")),
                Markup.Escape(server.Length > 0 ? server + "__" + tool : tool),
                Markup.Escape(Output.Str(e, "effect")),
                Markup.Escape(Output.Str(e, "rule")),
                Markup.Escape(outcome),
                Markup.Escape(detail.Length > 80 ? detail[..80] + "…" : detail));
        }

        if (events.GetArrayLength() > 0 || header)
        {
            AnsiConsole.Write(table);
        }

        return last;
    }

    // Tables show the time of day to the millisecond (UTC); --json has the full timestamp.
    private static string ShortTime(string time) => time.Length >= 23 ? time[11..23] : time;

    private static string DataFolder(string configPath)
    {
        var config = ServeCommand.LoadConfig(configPath);
        var folder = config.Resolve(config.DataDir);
        if (!Directory.Exists(folder))
        {
            throw new CliException($"no data folder at {folder}", 2);
        }

        return folder;
    }

    private static SqliteAuditStore OpenReadOnly(string folder)
    {
        var path = Path.Combine(folder, SqliteAuditStoreOptions.DefaultFileName);
        if (!File.Exists(path))
        {
            throw new CliException($"no audit log at {path}", 2);
        }

        var store = new SqliteAuditStore(new SqliteAuditStoreOptions { Path = path, ReadOnly = true });
        try
        {
            store.InitializeAsync().AsTask().GetAwaiter().GetResult();
        }
        catch (StoreUnavailableException ex)
        {
            throw new CliException(ex.Message, 2);
        }

        return store;
    }
}
