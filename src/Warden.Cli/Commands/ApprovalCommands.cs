using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;

namespace Warden.Cli.Commands;

/// <summary><c>warden approvals</c>: list, show and decide held calls through the running gateway, with an approver's token.</summary>
internal static class ApprovalCommands
{
    public static Command Create() => new("approvals", "Calls waiting for a person: list, show, approve, deny (approver token; operators may list and show)")
    {
        List(), Show(), Decide("approve"), Decide("deny"), Remembered(), Forget(),
    };

    private static Command List()
    {
        var state = new Option<string?>("--state") { Description = "pending (default), approved, denied, expired, withdrawn, voided, abandoned, executed, or all" };
        var agent = new Option<string?>("--agent") { Description = "Only this agent's" };
        var limit = new Option<int>("--limit") { Description = "At most this many, newest first", DefaultValueFactory = _ => 100 };
        var (url, token, json) = (CommonOptions.Url(), CommonOptions.Token(), CommonOptions.Json());
        var command = new Command("list", "List approvals (pending ones by default)") { state, agent, limit, url, token, json };
        command.SetAction(async (parse, ct) =>
        {
            var s = parse.GetValue(state) ?? "pending";
            var query = $"approvals?limit={parse.GetValue(limit)}" + (s == "all" ? "" : "&state=" + Uri.EscapeDataString(s))
                + (parse.GetValue(agent) is { } who ? "&agent=" + Uri.EscapeDataString(who) : "");
            using var api = new ApiClient(parse.GetValue(url), parse.GetValue(token));
            var list = await api.SendAsync(HttpMethod.Get, query, cancellationToken: ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(list, Output.Indented));
                return 0;
            }

            var items = list.GetProperty("approvals");
            if (items.GetArrayLength() == 0)
            {
                AnsiConsole.MarkupLine($"no {Markup.Escape(s == "all" ? "" : s + " ")}approvals");
                return 0;
            }

            var table = new Table().AddColumns("id", "state", "agent", "tool", "rule", "age", "time left");
            var now = DateTimeOffset.UtcNow;
            foreach (var a in items.EnumerateArray())
            {
                var expires = a.GetProperty("expiresAt").GetDateTimeOffset();
                var st = a.GetProperty("state").GetString() ?? "";
                table.AddRow(
                    Markup.Escape(a.GetProperty("id").GetString() ?? ""),
                    StateMarkup(st),
                    Markup.Escape(a.GetProperty("agent").GetString() ?? ""),
                    Markup.Escape(a.GetProperty("displayName").GetString() ?? ""),
                    Markup.Escape(a.GetProperty("rule").GetString() ?? ""),
                    Span(now - a.GetProperty("createdAt").GetDateTimeOffset()),
                    st == "pending" ? Span(expires - now) : "");
            }

            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }

    private static Command Show()
    {
        var id = new Argument<string>("id") { Description = "The approval's id (apr_...)" };
        var (url, token, json) = (CommonOptions.Url(), CommonOptions.Token(), CommonOptions.Json());
        var command = new Command("show", "Show one approval: the exact call, its arguments and digest, the rule, who may decide") { id, url, token, json };
        command.SetAction(async (parse, ct) =>
        {
            using var api = new ApiClient(parse.GetValue(url), parse.GetValue(token));
            var a = await api.SendAsync(HttpMethod.Get, "approvals/" + Uri.EscapeDataString(parse.GetValue(id)!), cancellationToken: ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(a, Output.Indented));
            }
            else
            {
                Print(a);
            }

            return 0;
        });
        return command;
    }

    private static Command Decide(string verb)
    {
        var id = new Argument<string>("id") { Description = "The approval's id (apr_...)" };
        var reason = new Option<string?>("--reason", "-r") { Description = verb == "deny" ? "Why (required; the agent receives it)" : "Why (optional; recorded)", Required = verb == "deny" };
        var digest = new Option<string?>("--digest") { Description = "The digest of the call you reviewed (from 'show'); without it, the call shown here is the one decided" };
        var remember = new Option<string?>("--remember-for") { Description = "Also let the same call (tool and arguments) of this agent run without asking for this long: 30m, 8h, 2d (at most 7d)" };
        var (url, token, json) = (CommonOptions.Url(), CommonOptions.Token(), CommonOptions.Json());
        var command = new Command(verb, verb == "approve"
            ? "Approve exactly the call shown: it runs once (approver token; never the agent's own, never an agent token)"
            : "Deny a call, with a reason the agent receives (approver token)")
        {
            id, reason, digest, url, token, json,
        };
        if (verb == "approve")
        {
            command.Add(remember);
        }

        command.SetAction(async (parse, ct) =>
        {
            using var api = new ApiClient(parse.GetValue(url), parse.GetValue(token));
            var approvalId = Uri.EscapeDataString(parse.GetValue(id)!);
            var pinned = parse.GetValue(digest);
            if (pinned is null)
            {
                // Bind to what this command shows: read it, print it, decide on its digest.
                var current = await api.SendAsync(HttpMethod.Get, "approvals/" + approvalId, cancellationToken: ct);
                pinned = current.GetProperty("digest").GetString();
                if (!parse.GetValue(json))
                {
                    Print(current);
                }
            }

            var decided = await api.SendAsync(HttpMethod.Post, $"approvals/{approvalId}/decision", new
            {
                decision = verb,
                digest = pinned,
                reason = parse.GetValue(reason),
                rememberFor = verb == "approve" ? parse.GetValue(remember) : null,
            }, ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(decided, Output.Indented));
                return 0;
            }

            var state = decided.GetProperty("state").GetString();
            if (state == "pending")
            {
                AnsiConsole.MarkupLine("[yellow]your approval is recorded; the two-person rule needs a second approver[/]");
            }
            else
            {
                AnsiConsole.MarkupLine($"{StateMarkup(state ?? "")} {Markup.Escape(decided.GetProperty("id").GetString() ?? "")}" +
                    (Has(decided, "remember", out var rem) ? $"; remembered until {rem.GetProperty("until").GetDateTimeOffset().ToString("u", CultureInfo.InvariantCulture)} ({Markup.Escape(rem.GetProperty("id").GetString() ?? "")})" : ""));
            }

            return 0;
        });
        return command;
    }

    private static Command Remembered()
    {
        var all = new Option<bool>("--all") { Description = "Also ended and revoked ones" };
        var (url, token, json) = (CommonOptions.Url(), CommonOptions.Token(), CommonOptions.Json());
        var command = new Command("remembered", "List remembered approvals (approve --remember-for)") { all, url, token, json };
        command.SetAction(async (parse, ct) =>
        {
            using var api = new ApiClient(parse.GetValue(url), parse.GetValue(token));
            var list = await api.SendAsync(HttpMethod.Get, "approvals/remembered" + (parse.GetValue(all) ? "?all=true" : ""), cancellationToken: ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(list, Output.Indented));
                return 0;
            }

            var table = new Table().AddColumns("id", "agent", "tool", "arguments", "by", "until", "revoked");
            foreach (var g in list.GetProperty("remembered").EnumerateArray())
            {
                table.AddRow(
                    Markup.Escape(g.GetProperty("id").GetString() ?? ""),
                    Markup.Escape(g.GetProperty("agent").GetString() ?? ""),
                    Markup.Escape(g.GetProperty("server").GetString() + "__" + g.GetProperty("tool").GetString()),
                    Markup.Escape(Fold(g.GetProperty("arguments").GetRawText(), 60)),
                    Markup.Escape(g.GetProperty("by").GetString() ?? ""),
                    g.GetProperty("until").GetDateTimeOffset().ToString("u", CultureInfo.InvariantCulture),
                    Has(g, "revokedBy", out var r) ? Markup.Escape(r.GetString() ?? "") : "");
            }

            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }

    private static Command Forget()
    {
        var id = new Argument<string>("id") { Description = "The remembered approval's id (rem_...)" };
        var (url, token) = (CommonOptions.Url(), CommonOptions.Token());
        var command = new Command("forget", "Revoke a remembered approval: the call asks again") { id, url, token };
        command.SetAction(async (parse, ct) =>
        {
            using var api = new ApiClient(parse.GetValue(url), parse.GetValue(token));
            await api.SendAsync(HttpMethod.Delete, "approvals/remembered/" + Uri.EscapeDataString(parse.GetValue(id)!), cancellationToken: ct);
            AnsiConsole.MarkupLine($"[green]revoked[/] {Markup.Escape(parse.GetValue(id)!)}");
            return 0;
        });
        return command;
    }

    private static void Print(JsonElement a)
    {
        var grid = new Grid().AddColumn().AddColumn();
        void Row(string k, string v) => grid.AddRow($"[bold]{k}[/]", v);
        Row("id", Markup.Escape(a.GetProperty("id").GetString() ?? ""));
        Row("state", StateMarkup(a.GetProperty("state").GetString() ?? ""));
        Row("agent", Markup.Escape($"{a.GetProperty("agent").GetString()} (session {a.GetProperty("session").GetString()})"));
        Row("call", Markup.Escape(a.GetProperty("displayName").GetString() ?? ""));
        Row("rule", Markup.Escape(a.GetProperty("rule").GetString() + (Has(a, "reason", out var r) ? ": " + r.GetString() : "")));
        var groups = string.Join(", ", a.GetProperty("approverGroups").EnumerateArray().Select(g => g.GetString()));
        Row("approvers", Markup.Escape(groups.Length == 0 ? "any approver" : groups) + (a.GetProperty("twoPerson").GetBoolean() ? " [yellow](two-person rule)[/]" : ""));
        var signed = string.Join(", ", a.GetProperty("approvals").EnumerateArray().Select(s => s.GetProperty("by").GetString()));
        if (signed.Length > 0)
        {
            Row("approved by", Markup.Escape(signed));
        }

        Row("expires", a.GetProperty("expiresAt").GetDateTimeOffset().ToString("u", CultureInfo.InvariantCulture));
        if (Has(a, "decidedBy", out var by))
        {
            Row("decided", Markup.Escape($"{by.GetString()}" + (Has(a, "decisionReason", out var dr) ? ": " + dr.GetString() : "")));
        }

        foreach (var f in a.GetProperty("findings").EnumerateArray())
        {
            Row("finding", Markup.Escape($"{f.GetProperty("kind").GetString()} at {f.GetProperty("location").GetString()}"));
        }

        Row("digest", Markup.Escape(a.GetProperty("digest").GetString() ?? ""));
        AnsiConsole.Write(grid);
        // The arguments in full: an approver approves exactly these bytes, so nothing is cut.
        AnsiConsole.WriteLine(JsonSerializer.Serialize(a.GetProperty("arguments"), Output.Indented));
    }

    // The API writes absent values as null; both mean "not there".
    private static bool Has(JsonElement e, string name, out JsonElement value) =>
        e.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

    private static string StateMarkup(string state) => state switch
    {
        "pending" => "[yellow]pending[/]",
        "approved" or "executed" => $"[green]{state}[/]",
        "denied" or "voided" => $"[red]{state}[/]",
        _ => $"[grey]{Markup.Escape(state)}[/]",
    };

    private static string Span(TimeSpan t) => t < TimeSpan.Zero ? "0s" : t.TotalMinutes < 1 ? $"{(int)t.TotalSeconds}s" : t.TotalHours < 1 ? $"{(int)t.TotalMinutes}m" : $"{(int)t.TotalHours}h{t.Minutes:00}m";

    private static string Fold(string s, int max) => s.Length <= max ? s : s[..(max - 1)] + "…";
}
