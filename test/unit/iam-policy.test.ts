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

  it("the operator may do exactly what the fleet commands call, and no more", () => {
    const actions = new Set(operator.Statement.flatMap((s) => s.Action));
    assert.deepEqual([...actions].sort(), [
      // infra/ec2.ts: plan, launch, watch and end.
      "ec2:CreateFleet",
      "ec2:CreateLaunchTemplate",
      // Tags given in the create calls.
      "ec2:CreateTags",
      "ec2:DeleteFleets",
      "ec2:DeleteLaunchTemplate",
      "ec2:DescribeFleets",
      "ec2:DescribeImages",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeInstances",
      "ec2:DescribeLaunchTemplates",
      "ec2:DescribeSpotPriceHistory",
      "ec2:DescribeSubnets",
      // An instant CreateFleet launches as its caller.
      "ec2:RunInstances",
      "ec2:TerminateInstances",
      "iam:PassRole",
      // infra/secrets.ts: put (a new parameter is created with its tag) and show.
      "ssm:AddTagsToResource",
      "ssm:GetParameters",
      "ssm:PutParameter",
    ]);
    const parameters =
      "arn:aws:ssm:us-west-2:123456789012:parameter/fitsfleet/*";
    for (const action of [
      "ssm:PutParameter",
      "ssm:AddTagsToResource",
      "ssm:GetParameters",
    ]) {
      assert.deepEqual(
        statement(operator, action).map((s) => s.Resource),
        [parameters],
        action,
      );
    }
    assert.ok(
      ![...operator.Statement, ...worker.Statement].some((s) =>
        s.Action.some((a) => a.startsWith("kms:")),
      ),
      "no KMS statement without a customer managed key",
    );
  });

  it("allows a customer managed key only when one is named, and only through its service", () => {
    const secretsKey =
      "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const volumeKey =
      "arn:aws:kms:us-west-2:123456789012:key/0987dcba-09fe-87dc-65ba-ab0987654321";
    const keyed = iamPolicies({
      workerRole: "fitsfleet-worker",
      archive: "s3://gemini-archive/data",
      region: "us-west-2",
      secretsKmsKey: secretsKey,
      volumeKmsKey: volumeKey,
    });
    const [encrypt] = statement(keyed.operator, "kms:Encrypt");
    assert.equal(encrypt!.Resource, secretsKey);
    assert.deepEqual(encrypt!.Condition?.StringLike, {
      "kms:ViaService": "ssm.us-west-2.amazonaws.com",
    });
    const [decrypt] = statement(keyed.worker, "kms:Decrypt");
    assert.equal(decrypt!.Resource, secretsKey);
    assert.deepEqual(decrypt!.Condition?.StringLike, {
      "kms:ViaService": "ssm.us-west-2.amazonaws.com",
    });
    const [grant] = statement(keyed.operator, "kms:CreateGrant");
    assert.equal(grant!.Resource, volumeKey);
    assert.equal(grant!.Condition?.Bool?.["kms:GrantIsForAWSResource"], "true");
    for (const s of keyed.operator.Statement.filter((s) =>
      s.Action.some((a) => a.startsWith("kms:")),
    )) {
      assert.ok(s.Condition?.StringLike?.["kms:ViaService"], s.Sid);
    }
    assert.ok(
      !keyed.worker.Statement.some((s) => s.Resource === volumeKey),
      "the workers never touch the volume key",
    );
    assert.throws(
      () =>
        iamPolicies({
          workerRole: "w",
          archive: "s3://bucket/p",
          secretsKmsKey: "alias/fitsfleet",
        }),
      (e: unknown) =>
        e instanceof UsageError &&
        /--secrets-kms-key alias\/fitsfleet/.test(e.message),
    );
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
