/**
 * The fleet's IAM policies: what the operator may do only to tagged
 * resources and only with IMDSv2, the one role it may pass, and the
 * workers' narrow reads and writes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  FLEET_TAG,
  iamPolicies,
  type PolicyDocument,
} from "../../infra/iam-policy.js";
import { UsageError } from "../../lib/errors.js";

function statement(document: PolicyDocument, action: string) {
  const found = document.Statement.filter((s) => s.Action.includes(action));
  assert.ok(found.length > 0, `no statement allows ${action}`);
  return found;
}

describe("IAM policies", () => {
  const { operator, worker } = iamPolicies({
    workerRole: "fitsfleet-worker",
    archive: "s3://gemini-archive/data",
    account: "123456789012",
    region: "us-west-2",
  });

  it("the operator terminates and deletes only resources carrying the fitsfleet tag", () => {
    for (const action of [
      "ec2:TerminateInstances",
      "ec2:DeleteFleets",
      "ec2:DeleteLaunchTemplate",
    ]) {
      for (const s of statement(operator, action)) {
        assert.deepEqual(s.Condition?.Null, {
          [`aws:ResourceTag/${FLEET_TAG}`]: "false",
        });
      }
    }
  });

  it("the operator launches instances only tagged and with IMDSv2 required", () => {
    const launch = statement(operator, "ec2:RunInstances").find((s) =>
      JSON.stringify(s.Resource).includes("instance/"),
    )!;
    assert.equal(
      launch.Condition?.StringEquals?.["ec2:MetadataHttpTokens"],
      "required",
    );
    assert.deepEqual(launch.Condition?.Null, {
      [`aws:RequestTag/${FLEET_TAG}`]: "false",
    });
    const create = statement(operator, "ec2:CreateFleet").find(
      (s) => s.Condition !== undefined,
    )!;
    assert.ok(create.Condition?.Null !== undefined);
    // Tags can be set only while creating, never added to someone else's instance.
    const [tags] = statement(operator, "ec2:CreateTags");
    assert.ok(
      tags!.Condition?.StringEquals?.["ec2:CreateAction"] !== undefined,
    );
  });

  it("the operator passes only the worker role, only to EC2", () => {
    const [pass] = statement(operator, "iam:PassRole");
    assert.equal(
      pass!.Resource,
      "arn:aws:iam::123456789012:role/fitsfleet-worker",
    );
    assert.equal(
      pass!.Condition?.StringEquals?.["iam:PassedToService"],
      "ec2.amazonaws.com",
    );
    assert.ok(
      !operator.Statement.some(
        (s) =>
          s.Resource === "*" &&
          s.Action.some(
            (a) => !a.startsWith("ec2:Describe") && a !== "ec2:CreateTags",
          ),
      ),
      "nothing but describing (and tagging at creation) on every resource",
    );
  });

  it("workers read their secrets and the archive, and write only previews", () => {
    const [secrets] = statement(worker, "ssm:GetParameter");
    assert.equal(
      secrets!.Resource,
      "arn:aws:ssm:us-west-2:123456789012:parameter/fitsfleet/*",
    );
    assert.deepEqual(
      statement(worker, "s3:PutObject").map((s) => s.Resource),
      ["arn:aws:s3:::gemini-archive/data/previews/*"],
    );
    assert.ok(
      statement(worker, "s3:GetObject").some(
        (s) => s.Resource === "arn:aws:s3:::gemini-archive/data/*",
      ),
    );
    const actions = worker.Statement.flatMap((s) => s.Action);
    assert.ok(
      !actions.some((a) => a.startsWith("ec2:") || a.startsWith("iam:")),
    );
    assert.ok(!actions.includes("s3:DeleteObject"));
  });

  it("refuses an archive that is not on S3, and odd names, with the flag named", () => {
    assert.throws(
      () => iamPolicies({ workerRole: "w", archive: "/data/archive" }),
      (e: unknown) =>
        e instanceof UsageError && /--storage \/data\/archive/.test(e.message),
    );
    assert.throws(
      () =>
        iamPolicies({
          workerRole: "w",
          archive: "s3://b/p",
          account: "12",
        }),
      (e: unknown) => e instanceof UsageError && /--account 12/.test(e.message),
    );
  });
});
