"""`python -m gateway bedrock setup|status|teardown|smoke|policy` against the fake Bedrock's
control plane (bedrock-agent rest-json at the wire level, through the real boto3 clients):
setup from nothing, a second setup that makes no write call, a prompt made by an older schema
reported stale (exit 1) and fixed by setup moving the alias, teardown, the inference profile
chosen per region and the IAM policy covering every region it routes to."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from gateway.bedrock import control, profiles
from gateway.cli import main
from gateway.vectorizers import prompt
from gateway.vectorizers.bedrock import BedrockConverseVectorizer
from tests.fakes.fake_bedrock import FakeBedrock, answer, error, isolate_aws_env

ROLE = "arn:aws:iam::123456789012:role/customer-vectorizer-flow"
WRITES = {"POST", "PUT", "DELETE"}


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    isolate_aws_env(monkeypatch, tmp_path)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFAKECONTROLTEST1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-control-0123456789")


@pytest.fixture
def fake():
    with FakeBedrock() as server:
        yield server


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def setup_args(fake, config, *extra: str) -> list[str]:
    return ["bedrock", "setup", "--region", "ap-northeast-2", "--endpoint-url", fake.url,
            "--config", str(config), *extra]


@dataclass(frozen=True)
class OlderSchemaDesired(control.Desired):
    """What setup deployed before the schema changed: another prompt text."""

    @property
    def text(self) -> str:
        return "An older prompt without the current codes.\n<customer_message>\n{{text}}\n</customer_message>"


def test_setup_from_nothing_then_again_changes_nothing(aws_env, fake, tmp_path, capsys):
    config = tmp_path / "bedrock-flow.json"
    code, out, _ = run(capsys, *setup_args(fake, config, "--role-arn", ROLE))
    assert code == 0, out
    assert [line.split()[:2] for line in out.splitlines()[:7]] == [
        ["prompt", "created"], ["prompt-version", "created"], ["flow", "created"], ["flow", "prepared"],
        ["flow-version", "created"], ["alias", "created"], ["config", "written"]]

    written = json.loads(config.read_text())
    assert written["region"] == "ap-northeast-2"
    assert written["modelId"] == "apac.amazon.nova-pro-v1:0"  # Seoul calls the APAC profile
    assert not any("secret" in key.lower() or "key" in key.lower() for key in written)
    # What was deployed: the schema's prompt, wired input -> prompt -> output, in the config's region.
    [stored_prompt] = fake.control.prompts.values()
    variant = stored_prompt["versions"]["1"]["variants"][0]
    assert variant["templateConfiguration"]["text"]["text"] == prompt.render_flow_prompt()
    assert variant["modelId"] == "apac.amazon.nova-pro-v1:0"
    [flow] = fake.control.flows.values()
    assert flow["executionRoleArn"] == ROLE and flow["status"] == "Prepared"
    assert flow["arn"].startswith("arn:aws:bedrock:ap-northeast-2:")
    alias = flow["aliases"][written["flowAliasIdentifier"]]
    assert alias["routingConfiguration"] == [{"flowVersion": "1"}]
    assert {r.region for r in fake.requests} == {"ap-northeast-2"}
    # The printed IAM policy covers every region the profile routes to (from GetInferenceProfile).
    assert "destination regions from GetInferenceProfile" in out
    for region in ("ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2"):
        assert f"arn:aws:bedrock:{region}::foundation-model/amazon.nova-pro-v1:0" in out

    before = len(fake.requests)
    code, out, _ = run(capsys, *setup_args(fake, config))  # no --role-arn: the flow's role is kept
    assert code == 0
    assert {line.split()[1] for line in out.splitlines()[:6]} == {"unchanged"}
    assert {r.method for r in fake.requests[before:]} == {"GET"}  # not one write call
    assert json.loads(config.read_text()) == written

    # The gateway's flow vectorizer can call what setup made.
    fake.script(answer({"age": 55, "gender": 1, "budget": 300000, "interest": 10, "purpose": 2, "season": 4}))
    code, out, _ = run(capsys, "bedrock", "smoke", "엄마 선물 30만원", "--endpoint-url", fake.url,
                       "--config", str(config))
    assert code == 0, out
    assert "vector       ['55', '1', '300000', '10', '2', '4']" in out
    assert "execution_id " in out and "latency_ms " in out
    invoke = fake.requests_for("invoke_flow")[-1]
    assert invoke.path == f"/flows/{written['flowIdentifier']}/aliases/{written['flowAliasIdentifier']}"
    # The fake checks the call against the deployed flow: a wrong input node is refused.
    config.write_text(json.dumps({**written, "inputNodeName": "Input"}))
    code, out, _ = run(capsys, "bedrock", "smoke", "hi", "--endpoint-url", fake.url, "--config", str(config))
    assert code == 1 and "ValidationException" in out and "no input node Input.document" in out


def test_status_reports_a_stale_prompt_and_setup_moves_the_alias(aws_env, fake, tmp_path, capsys):
    config = tmp_path / "flow.json"
    plane = control.BedrockControl("eu-west-1", fake.url)
    older = OlderSchemaDesired(region="eu-west-1", model_id="eu.amazon.nova-pro-v1:0", role_arn=ROLE)
    _, deployed = plane.setup(older)
    control.write_config(config, deployed)

    code, out, _ = run(capsys, "bedrock", "status", "--endpoint-url", fake.url, "--config", str(config), "--diff")
    assert code == 1
    assert out.startswith("STALE: alias ")
    assert "prompt text differs from the schema's" in out
    assert "+" + prompt.render_flow_prompt().splitlines()[0] in out  # the diff shows the schema's text

    code, out, _ = run(capsys, "bedrock", "setup", "--region", "eu-west-1", "--endpoint-url", fake.url,
                       "--config", str(config))
    assert code == 0
    actions = {line.split()[0] + " " + line.split()[1] for line in out.splitlines()[:7]}
    assert {"prompt updated", "prompt-version created", "flow updated", "flow prepared",
            "flow-version created", "alias moved", "config written"} <= actions
    updated = json.loads(config.read_text())
    assert (updated["flowIdentifier"], updated["flowAliasIdentifier"]) == \
        (deployed["flowIdentifier"], deployed["flowAliasIdentifier"])  # the gateway's ids never change
    assert (updated["promptVersion"], updated["flowVersion"]) == ("2", "2")

    code, out, _ = run(capsys, "bedrock", "status", "--endpoint-url", fake.url, "--config", str(config))
    assert code == 0 and out.startswith("current: ")
    # A different model is stale too.
    code, out, _ = run(capsys, "bedrock", "status", "--endpoint-url", fake.url, "--config", str(config),
                       "--model-id", "amazon.nova-lite-v1:0")
    assert code == 1 and "model eu.amazon.nova-pro-v1:0, expected amazon.nova-lite-v1:0" in out


def test_teardown_removes_everything_setup_made(aws_env, fake, tmp_path, capsys):
    config = tmp_path / "flow.json"
    assert run(capsys, *setup_args(fake, config, "--role-arn", ROLE))[0] == 0
    ids = json.loads(config.read_text())

    code, out, _ = run(capsys, "bedrock", "teardown", "--endpoint-url", fake.url, "--config", str(config))
    assert code == 0, out
    assert [line.split()[:2] for line in out.splitlines()] == [
        ["alias", "deleted"], ["flow-version", "deleted"], ["flow", "deleted"], ["prompt", "deleted"],
        ["config", "deleted"]]
    assert fake.control.flows == {} and fake.control.prompts == {}
    assert not config.exists()
    # Again: nothing left to remove (found by name).
    code, out, _ = run(capsys, "bedrock", "teardown", "--region", "ap-northeast-2", "--endpoint-url", fake.url,
                       "--config", str(config))
    assert code == 0 and [line.split()[1] for line in out.splitlines()] == ["absent", "absent"]
    # The gateway's old config now points at nothing: a permanent error with its remedy.
    control.write_config(config, ids)
    code, out, _ = run(capsys, "bedrock", "smoke", "hello", "--endpoint-url", fake.url, "--config", str(config))
    assert code == 1
    assert "ResourceNotFoundException" in out and "kind         not_found (permanent)" in out
    assert "bedrock setup --region ap-northeast-2" in out
    assert len(fake.requests_for("invoke_flow")) == 1  # permanent: not retried


def test_setup_errors_name_the_call_and_the_remedy(aws_env, fake, tmp_path, capsys):
    config = tmp_path / "flow.json"
    code, _, err = run(capsys, *setup_args(fake, config))  # no role to create the flow with
    assert code == 2 and "--role-arn" in err and "bedrock policy" in err

    fake.fail_control("CreateFlow", error(403, "AccessDeniedException", "User is not authorized to perform "
                                                                       "bedrock:CreateFlow"))
    code, _, err = run(capsys, *setup_args(fake, config, "--role-arn", ROLE))
    assert code == 2
    assert "create_flow failed with AccessDeniedException (HTTP 403)" in err
    assert "not authorized to perform bedrock:CreateFlow" in err
    assert "the identity running this command needs bedrock:CreateFlow in ap-northeast-2" in err
    assert not config.exists()
    # The prompt made before the failure is reused by the next run, not duplicated.
    assert run(capsys, *setup_args(fake, config, "--role-arn", ROLE))[0] == 0
    assert len(fake.control.prompts) == 1
    # A name the service refuses: its ValidationException, as AWS words it.
    code, _, err = run(capsys, *setup_args(fake, tmp_path / "x.json", "--role-arn", ROLE, "--flow-name", "my flow"))
    assert code == 2 and "ValidationException" in err and "'my flow' at 'name'" in err


@pytest.mark.parametrize("region, model_id", [
    ("us-east-1", "us.amazon.nova-pro-v1:0"),
    ("us-west-2", "us.amazon.nova-pro-v1:0"),
    ("eu-central-1", "eu.amazon.nova-pro-v1:0"),
    ("eu-west-3", "eu.amazon.nova-pro-v1:0"),
    ("ap-northeast-2", "apac.amazon.nova-pro-v1:0"),  # Seoul
    ("ap-northeast-1", "apac.amazon.nova-pro-v1:0"),
    ("ap-southeast-2", "apac.amazon.nova-pro-v1:0"),
])
def test_default_model_is_the_regions_inference_profile(region, model_id):
    assert profiles.default_model_id(region) == model_id
    policy = json.dumps(profiles.gateway_policy(region, model_id))
    assert f"arn:aws:bedrock:{region}:123456789012:inference-profile/{model_id}" in policy
    for destination in profiles.GEOGRAPHIES[model_id.split(".")[0]].destinations:
        assert f"arn:aws:bedrock:{destination}::foundation-model/amazon.nova-pro-v1:0" in policy


def test_unknown_region_asks_for_a_model_id(capsys, aws_env):
    with pytest.raises(ValueError, match="pass --model-id"):
        profiles.default_model_id("sa-east-1")
    code, _, err = run(capsys, "bedrock", "policy", "--region", "sa-east-1")
    assert code == 2 and "--model-id" in err
    code, out, _ = run(capsys, "bedrock", "policy", "--region", "sa-east-1", "--model-id", "amazon.nova-pro-v1:0")
    assert code == 0 and "arn:aws:bedrock:sa-east-1::foundation-model/amazon.nova-pro-v1:0" in out
    assert "bedrock.amazonaws.com" in out  # the flow role's trust policy


def test_converse_calls_the_profile_and_model_id_overrides(aws_env, fake):
    fake.default = answer({"age": 0, "gender": 0, "budget": 0, "interest": 0, "purpose": 0, "season": 0})
    BedrockConverseVectorizer(region="ap-northeast-2", endpoint_url=fake.url, max_attempts=1).vectorize("hi")
    BedrockConverseVectorizer(region="ap-northeast-2", endpoint_url=fake.url, max_attempts=1,
                              model_id="amazon.nova-lite-v1:0").vectorize("hi")
    assert [r.path for r in fake.requests] == ["/model/apac.amazon.nova-pro-v1:0/converse",
                                                "/model/amazon.nova-lite-v1:0/converse"]
    assert {r.region for r in fake.requests} == {"ap-northeast-2"}


def test_setup_names_and_model_smoke_converse_and_policy_account(aws_env, fake, tmp_path, capsys):
    config = tmp_path / "us.json"
    code, out, _ = run(capsys, "bedrock", "setup", "--region", "us-east-1", "--endpoint-url", fake.url,
                       "--config", str(config), "--role-arn", ROLE, "--model-id", "amazon.nova-lite-v1:0",
                       "--prompt-name", "shop-prompt", "--flow-name", "shop-flow", "--alias-name", "prod")
    assert code == 0, out
    [stored_prompt] = fake.control.prompts.values()
    [flow] = fake.control.flows.values()
    assert stored_prompt["name"] == "shop-prompt" and stored_prompt["variants"][0]["modelId"] == "amazon.nova-lite-v1:0"
    assert flow["name"] == "shop-flow"
    assert {a["name"] for a in flow["aliases"].values()} == {"TSTALIASID", "prod"}
    assert "a model id, not a profile: served in this region only" in out
    assert json.loads(config.read_text())["modelId"] == "amazon.nova-lite-v1:0"

    fake.script(answer({"age": 30, "gender": 2, "budget": 0, "interest": 6, "purpose": 1, "season": 0}))
    code, out, _ = run(capsys, "bedrock", "smoke", "I'm a 30-year-old man who loves reading", "--vectorizer",
                       "bedrock-converse", "--region", "us-east-1", "--endpoint-url", fake.url)
    assert code == 0 and "vector       ['30', '2', '0', '6', '1', '0']" in out and "request_id " in out
    assert fake.requests[-1].path == "/model/us.amazon.nova-pro-v1:0/converse"

    code, out, _ = run(capsys, "bedrock", "policy", "--region", "us-east-2", "--account", "111122223333")
    assert code == 0
    assert "arn:aws:bedrock:us-east-2:111122223333:inference-profile/us.amazon.nova-pro-v1:0" in out
    assert "arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-pro-v1:0" in out
