"""The query-domain centre on the AWS path: the index function writes through SageMaker into OpenSearch, an
operator fits a centre (`visual-search adapt --index URL`, the embedder being the same endpoint), and the
search function's results are those of projected vectors, the projection done by the library on the query side:
the endpoint keeps making raw vectors."""

from __future__ import annotations

import base64
import json
import uuid

import numpy as np
from aws_fixtures import BUCKET, load_event, s3_event, sqs_batch

from visual_search.aws import handlers
from visual_search.cli.main import main
from visual_search.core.centre import fit_centre, project
from visual_search.core.images import decode_image
from visual_search.indexes.opensearch.index import OpenSearchIndex


def test_a_centre_fitted_with_the_endpoint_is_applied_by_the_search_function(
    function_environment, bucket, demo_photos, colour_embedder, opensearch_url, tmp_path, capsys
):
    url = f"{opensearch_url}/aws-centre-{uuid.uuid4().hex[:10]}"
    function_environment(VISUAL_SEARCH_INDEX=url)
    catalogue, shoppers = demo_photos[:4], demo_photos[4:]
    for photo in catalogue:
        bucket.put_object(Bucket=BUCKET, Key=photo.name, Body=photo.read_bytes())
    events = [[s3_event(BUCKET, p.name, created=True, sequencer=f"0{n}")] for n, p in enumerate(catalogue)]
    assert handlers.index_handler(sqs_batch(*events), None) == {"batchItemFailures": []}
    index = OpenSearchIndex.open_existing(url)
    try:
        for photo in shoppers:
            (tmp_path / photo.name).write_bytes(photo.read_bytes())
        assert main(["adapt", str(tmp_path), "--index", url]) == 0
        assert f"fitted the query-domain centre on {len(shoppers)} photos" in capsys.readouterr().out

        def embedded(paths):
            return colour_embedder.embed([decode_image(p.read_bytes()).image for p in paths])

        centre = fit_centre(embedded(shoppers), 0)
        assert index.centre == centre
        raw = embedded(catalogue)
        np.testing.assert_allclose(index.get_vector(catalogue[1].name), raw[1], atol=1e-6)  # raw kept

        handlers.reset_cached_services()  # a fresh search function reads the centre from the index
        query_photo = shoppers[0]
        event = load_event("search-key.json")
        event.update(body=base64.b64encode(query_photo.read_bytes()).decode(), isBase64Encoded=True)
        event["headers"]["content-type"] = "image/jpeg"
        response = handlers.search_handler(event, None)
        assert response["statusCode"] == 200, response["body"]
        results = json.loads(response["body"])["results"]
        query = project(embedded([query_photo])[0], centre, 0)
        scores = project(raw, centre, 0) @ query
        expected = [catalogue[i].name for i in np.argsort(-scores, kind="stable")]
        assert [result["key"] for result in results] == expected
        np.testing.assert_allclose([result["score"] for result in results], np.sort(scores)[::-1], atol=1e-4)
        scores_without = np.sort(raw @ embedded([query_photo])[0])[::-1]
        assert not np.allclose(np.sort(scores)[::-1], scores_without, atol=1e-3), "the centre must change scores"
    finally:
        index.drop()
        index.close()
