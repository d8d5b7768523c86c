using System.CommandLine;
using System.Text.Json;
using Spectre.Console;

namespace Warden.Cli.Commands;

internal static class StopCommands
{
    private static (Option<string?> Agent, Option<string?> Session, Option<string?> Server, Option<bool> All) ScopeOptions() => (
        new Option<string?>("--agent") { Description = "Every call of this agent, in all its sessions" },
        new Option<string?>("--session") { Description = "Every call of this Warden session (agent/transport-session, as status shows)" },
        new Option<string?>("--server") { Description = "Every call to this upstream" },
        new Option<bool>("--all") { Description = "Every call of every agent" });

    private static (string Scope, string Target) Scope(ParseResult parse, (Option<string?> Agent, Option<string?> Session, Option<string?> Server, Option<bool> All) o)
    {
        var chosen = new List<(string, string)>();
        if (parse.GetValue(o.Agent) is { } a)
        {
            chosen.Add(("agent", a));
        }

        if (parse.GetValue(o.Session) is { } s)
        {
            chosen.Add(("session", s));
        }

        if (parse.GetValue(o.Server) is { } v)
        {
            chosen.Add(("server", v));
        }

        if (parse.GetValue(o.All))
        {
            chosen.Add(("all", ""));
        }

        return chosen.Count == 1 ? chosen[0] : throw new CliException("name exactly one of --agent, --session, --server or --all", 2);
    }

    public static Command Stop()
    {
        var scope = ScopeOptions();
        var reason = new Option<string?>("--reason", "-r") { Description = "Why; the agent is told" };
        var url = CommonOptions.Url();
        var token = CommonOptions.Token();
        var json = CommonOptions.Json();
        var command = new Command("stop", "Stop an agent, a session, an upstream or everything: new calls refused, calls in flight cancelled (operator token)")
        {
            scope.Agent, scope.Session, scope.Server, scope.All, reason, url, token, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var (s, target) = Scope(parse, scope);
            using var api = new ApiClient(parse.GetValue(url), parse.GetValue(token));
            var ack = await api.SendAsync(HttpMethod.Post, "stops", new { scope = s, target, reason = parse.GetValue(reason) }, ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(ack, Output.Indented));
            }
            else
            {
                var recorded = ack.GetProperty("recorded").GetBoolean();
                AnsiConsole.MarkupLine($"[{(recorded ? "green" : "yellow")}]{Markup.Escape(ack.GetProperty("message").GetString() ?? "")}[/]");
                AnsiConsole.MarkupLine($"stop id: {Markup.Escape(ack.GetProperty("stop").GetProperty("id").GetString() ?? "")}");
            }

            return 0;
        });
        return command;
    }

    public static Command Resume()
    {
        var scope = ScopeOptions();
        var id = new Option<string?>("--id") { Description = "Lift one stop by its id instead of by scope" };
        var reason = new Option<string>("--reason", "-r") { Description = "Why it is safe to go on (required; recorded)", Required = true };
        var url = CommonOptions.Url();
        var token = CommonOptions.Token();
        var json = CommonOptions.Json();
        var command = new Command("resume", "Lift stops and pauses (operators only), with a reason")
        {
            scope.Agent, scope.Session, scope.Server, scope.All, id, reason, url, token, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            object body = parse.GetValue(id) is { } stopId
                ? new { id = stopId, reason = parse.GetValue(reason) }
                : Scope(parse, scope) is var (s, target) ? new { scope = s, target, reason = parse.GetValue(reason) } : throw new CliException("unreachable");
            using var api = new ApiClient(parse.GetValue(url), parse.GetValue(token));
            var lifted = await api.SendAsync(HttpMethod.Post, "stops/resume", body, ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(lifted, Output.Indented));
            }
            else
            {
                foreach (var item in lifted.EnumerateArray())
                {
                    AnsiConsole.MarkupLine($"[green]resumed[/] {Markup.Escape(item.GetProperty("scope").GetString() + ":" + item.GetProperty("target").GetString())} (stop {Markup.Escape(item.GetProperty("id").GetString() ?? "")})");
                }
            }

            return 0;
        });
        return command;
    }

    public static Command List()
    {
        var url = CommonOptions.Url();
        var token = CommonOptions.Token();
        var json = CommonOptions.Json();
        var command = new Command("stops", "List the stops and pauses in force") { url, token, json };
        command.SetAction(async (parse, ct) =>
        {
            using var api = new ApiClient(parse.GetValue(url), parse.GetValue(token));
            var stops = await api.SendAsync(HttpMethod.Get, "stops", cancellationToken: ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(stops, Output.Indented));
                return 0;
            }

            var table = new Table().AddColumns("id", "scope", "target", "by", "at", "reason");
            foreach (var s in stops.EnumerateArray())
            {
                table.AddRow(
                    Markup.Escape(s.GetProperty("id").GetString() ?? ""),
                    (s.GetProperty("pause").GetBoolean() ? "[yellow]pause[/] " : "") + Markup.Escape(s.GetProperty("scope").GetString() ?? ""),
                    Markup.Escape(s.GetProperty("target").GetString() ?? ""),
                    Markup.Escape(s.GetProperty("by").GetString() ?? ""),
                    s.GetProperty("at").GetDateTimeOffset().ToString("u", System.Globalization.CultureInfo.InvariantCulture),
                    Markup.Escape(s.GetProperty("reason").GetString() ?? ""));
            }

            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }
}
