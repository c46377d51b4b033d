/** The loopback endpoint's Parameter Store through the real SSM client (JSON 1.1 protocol). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { CreateLaunchTemplateCommand } from "@aws-sdk/client-ec2";
import {
  DeleteParameterCommand,
  DeleteParametersCommand,
  GetParameterCommand,
  GetParametersCommand,
  paginateGetParametersByPath,
  PutParameterCommand,
} from "@aws-sdk/client-ssm";

import { testEndpoint } from "./fixtures.js";

describe("loopback SSM", () => {
  it("puts, overwrites, gets, pages and deletes parameters", async (t) => {
    const aws = await testEndpoint(t);
    const ssm = aws.ssmClient();
    const put = await ssm.send(
      new PutParameterCommand({
        Name: "/ff/run-1/db",
        Value: "secret-1",
        Type: "SecureString",
      }),
    );
    assert.equal(put.Version, 1);
    await assert.rejects(
      ssm.send(
        new PutParameterCommand({
          Name: "/ff/run-1/db",
          Value: "x",
          Type: "SecureString",
        }),
      ),
      {
        name: "ParameterAlreadyExists",
      },
    );
    const over = await ssm.send(
      new PutParameterCommand({
        Name: "/ff/run-1/db",
        Value: "secret-2",
        Type: "SecureString",
        Overwrite: true,
      }),
    );
    assert.equal(over.Version, 2);
    for (const name of [
      "/ff/run-1/redis",
      "/ff/run-1/nested/a",
      "/ff/run-1/nested/b",
      "/ff/run-2/db",
    ]) {
      await ssm.send(
        new PutParameterCommand({
          Name: name,
          Value: `value of ${name}`,
          Type: "String",
        }),
      );
    }

    const plain = await ssm.send(
      new GetParameterCommand({ Name: "/ff/run-1/db", WithDecryption: true }),
    );
    assert.deepEqual(
      [plain.Parameter?.Type, plain.Parameter?.Value, plain.Parameter?.Version],
      ["SecureString", "secret-2", 2],
    );
    assert.ok(plain.Parameter?.LastModifiedDate instanceof Date);
    const sealed = await ssm.send(
      new GetParameterCommand({ Name: "/ff/run-1/db" }),
    );
    assert.notEqual(sealed.Parameter?.Value, "secret-2");
    assert.ok(!(sealed.Parameter?.Value ?? "").includes("secret"));
    await assert.rejects(
      ssm.send(new GetParameterCommand({ Name: "/ff/none" })),
      { name: "ParameterNotFound" },
    );

    const many = await ssm.send(
      new GetParametersCommand({ Names: ["/ff/run-1/redis", "/ff/none"] }),
    );
    assert.deepEqual(
      many.Parameters?.map((p) => p.Name),
      ["/ff/run-1/redis"],
    );
    assert.deepEqual(many.InvalidParameters, ["/ff/none"]);

    const byPath = async (Recursive: boolean) => {
      const names: string[] = [];
      let pages = 0;
      for await (const page of paginateGetParametersByPath(
        { client: ssm, pageSize: 2 },
        { Path: "/ff/run-1", Recursive, WithDecryption: true },
      )) {
        pages += 1;
        names.push(
          ...(page.Parameters ?? []).map((p) => `${p.Name}=${p.Value}`),
        );
      }
      return { names, pages };
    };
    assert.deepEqual(await byPath(false), {
      names: [
        "/ff/run-1/db=secret-2",
        "/ff/run-1/redis=value of /ff/run-1/redis",
      ],
      pages: 1,
    });
    const recursive = await byPath(true);
    assert.equal(recursive.pages, 2);
    assert.deepEqual(
      recursive.names.map((n) => n.split("=")[0]),
      [
        "/ff/run-1/db",
        "/ff/run-1/nested/a",
        "/ff/run-1/nested/b",
        "/ff/run-1/redis",
      ],
    );

    await ssm.send(new DeleteParameterCommand({ Name: "/ff/run-2/db" }));
    await assert.rejects(
      ssm.send(new DeleteParameterCommand({ Name: "/ff/run-2/db" })),
      { name: "ParameterNotFound" },
    );
    const deleted = await ssm.send(
      new DeleteParametersCommand({
        Names: ["/ff/run-1/nested/a", "/ff/none"],
      }),
    );
    assert.deepEqual(
      [deleted.DeletedParameters, deleted.InvalidParameters],
      [["/ff/run-1/nested/a"], ["/ff/none"]],
    );
    assert.deepEqual(
      aws
        .parameters()
        .map((p) => p.name)
        .sort(),
      ["/ff/run-1/db", "/ff/run-1/nested/b", "/ff/run-1/redis"],
    );
    assert.ok(
      aws
        .ssmReads()
        .every(
          (r) =>
            r.principal === "operator" &&
            r.accessKeyId === aws.operatorCredentials.accessKeyId,
        ),
    );
  });

  it("finds a secret that leaked into user-data or an image's settings", async (t) => {
    const aws = await testEndpoint(t);
    const secret = "postgres://u:pw-123@h/db";
    await aws.ssmClient().send(
      new PutParameterCommand({
        Name: "/ff/run-1/db",
        Value: secret,
        Type: "SecureString",
      }),
    );
    const ami = aws.registerImage({
      name: "leaky",
      argv: ["true"],
      env: { DATABASE_URL: secret },
    });
    await aws.ec2Client().send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: "leaky",
        LaunchTemplateData: {
          ImageId: ami,
          UserData: Buffer.from(`DATABASE_URL=${secret}`).toString("base64"),
        },
      }),
    );
    assert.deepEqual(
      aws.secretLeaks().map((l) => l.where),
      ["launch template leaky user-data", `image ${ami}`],
    );
  });
});
