using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using Warden.Core.Identity;

namespace Warden.Cli.Commands;

internal static class PrincipalCommands
{
    public static Command Create(string name, PrincipalKind kind, string description)
    {
        var singular = kind.ToString().ToLowerInvariant();
        var command = new Command(name, description);

        var url = CommonOptions.Url();
        var token = CommonOptions.Token();
        var json = CommonOptions.Json();
        var nameArg = new Argument<string>("name") { Description = $"The {singular}'s name" };
        var groups = new Option<string[]>("--group", "-g") { Description = "A group (repeatable)", AllowMultipleArgumentsPerToken = true };

        var add = new Command("add", $"Add an {singular} and print its token once (through the gateway, operator token)") { nameArg, groups, url, token, json };
        add.SetAction(async (parse, ct) =>
        {
            using var api = new ApiClient(parse.GetValue(url), parse.GetValue(token));
            var result = await api.SendAsync(HttpMethod.Post, name, new { name = parse.GetValue(nameArg), groups = parse.GetValue(groups) ?? [] }, ct).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(result, Output.Indented));
            }
            else
            {
                AnsiConsole.MarkupLine($"[green]{singular} '{Markup.Escape(parse.GetValue(nameArg)!)}' added.[/] Its token (shown once, store it now):");
                Console.WriteLine(result.GetProperty("token").GetString());
            }

            return 0;
        });

        var all = new Option<bool>("--all") { Description = "Include revoked ones" };
        var list = new Command("list", $"List {name}") { url, token, json, all };
        list.SetAction(async (parse, ct) =>
        {
            using var api = new ApiClient(parse.GetValue(url), parse.GetValue(token));
            var result = await api.SendAsync(HttpMethod.Get, name + (parse.GetValue(all) ? "?all=true" : ""), cancellationToken: ct).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(result, Output.Indented));
                return 0;
            }

            var table = new Table().AddColumns("name", "groups", "created", "revoked");
            foreach (var p in result.EnumerateArray())
            {
                table.AddRow(
                    Markup.Escape(p.GetProperty("name").GetString() ?? ""),
                    Markup.Escape(string.Join(", ", p.GetProperty("groups").EnumerateArray().Select(g => g.GetString()))),
                    p.GetProperty("createdAt").GetDateTimeOffset().ToString("u", System.Globalization.CultureInfo.InvariantCulture),
                    p.TryGetProperty("revokedAt", out var r) && r.ValueKind == JsonValueKind.String ? "[red]" + r.GetDateTimeOffset().ToString("u", System.Globalization.CultureInfo.InvariantCulture) + "[/]" : "");
            }

            AnsiConsole.Write(table);
            return 0;
        });

        var revoke = new Command("revoke", $"Revoke an {singular}'s token at once, on every gateway sharing the store") { nameArg, url, token };
        revoke.SetAction(async (parse, ct) =>
        {
            using var api = new ApiClient(parse.GetValue(url), parse.GetValue(token));
            await api.SendAsync(HttpMethod.Delete, name + "/" + Uri.EscapeDataString(parse.GetValue(nameArg)!), cancellationToken: ct).ConfigureAwait(false);
            AnsiConsole.MarkupLine($"[yellow]{singular} '{Markup.Escape(parse.GetValue(nameArg)!)}' revoked.[/]");
            return 0;
        });

        command.Subcommands.Add(add);
        command.Subcommands.Add(list);
        command.Subcommands.Add(revoke);
        return command;
    }
}
