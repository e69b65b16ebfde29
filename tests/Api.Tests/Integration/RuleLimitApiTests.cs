using System.Net;
using static Api.Tests.Integration.HttpAssert;

namespace Api.Tests.Integration;

/// <summary>
/// Rules in the cluster are bounded (issue 10 item 5) and listed a page at a time: one rule past Rules:MaxRules is a
/// 409 and stores nothing, also when the creates race.
/// </summary>
public sealed class RuleLimitApiTests(LimitedApiFactory factory) : IClassFixture<LimitedApiFactory>
{
    private readonly HttpClient _operator = factory.Operator();

    private static object Rule(string id) => new
    {
        id,
        name = "Limit " + id,
        severity = "minor",
        target = new { kind = "all" },
        condition = new { kind = "threshold", metric = "t", @operator = ">", value = 1 },
    };

    private const string Full = "The cluster has 3 rules, its limit (Rules:MaxRules); nothing was stored. Delete a rule before creating "
        + "another, or change an existing one with PUT.";

    [Fact]
    public async Task A_rule_past_the_limit_is_409_the_list_is_paged_and_racing_creates_never_pass_the_limit()
    {
        foreach (var id in new[] { "r1", "r2", "r3" })
        {
            await (await _operator.PostAsync("/api/v1/rules", Json(Rule(id)))).ExpectAsync(HttpStatusCode.Created);
        }
        await (await _operator.PostAsync("/api/v1/rules", Json(Rule("r4")))).ExpectProblemAsync(HttpStatusCode.Conflict, "Too many rules", Full);
        await (await _operator.GetAsync("/api/v1/rules/r4")).ExpectProblemAsync(HttpStatusCode.NotFound, "Rule not found", "There is no rule with id 'r4'.");

        // Pages by id.
        var first = await (await _operator.GetAsync("/api/v1/rules?limit=2")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal((3, 0, 2), (first.GetProperty("total").GetInt32(), first.GetProperty("offset").GetInt32(), first.GetProperty("limit").GetInt32()));
        Assert.Equal(["r1", "r2"], first.GetProperty("items").EnumerateArray().Select(r => r.GetProperty("id").GetString()));
        var second = await (await _operator.GetAsync("/api/v1/rules?offset=2&limit=2")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal(["r3"], second.GetProperty("items").EnumerateArray().Select(r => r.GetProperty("id").GetString()));
        await (await _operator.GetAsync("/api/v1/rules?offset=-1&limit=1001")).ExpectValidationProblemAsync("Invalid query", new Dictionary<string, string[]>
        {
            ["offset"] = ["offset must be 0 or more"],
            ["limit"] = ["limit must be between 1 and 1000"],
        });

        // Room for three again; six creates at once: three are stored, three refused.
        foreach (var id in new[] { "r1", "r2", "r3" })
        {
            await (await _operator.DeleteAsync($"/api/v1/rules/{id}")).ExpectAsync(HttpStatusCode.NoContent);
        }
        var racing = await Task.WhenAll(Enumerable.Range(1, 6).Select(i => _operator.PostAsync("/api/v1/rules", Json(Rule($"race-{i}")))));
        Assert.Equal(3, racing.Count(r => r.StatusCode == HttpStatusCode.Created));
        foreach (var refused in racing.Where(r => r.StatusCode != HttpStatusCode.Created))
        {
            await refused.ExpectProblemAsync(HttpStatusCode.Conflict, "Too many rules", Full);
        }
        var all = await (await _operator.GetAsync("/api/v1/rules")).ExpectAsync(HttpStatusCode.OK);
        Assert.Equal(3, all.GetProperty("total").GetInt32());
    }
}
