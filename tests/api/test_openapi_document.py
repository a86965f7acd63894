"""The document clients, generators and Swagger UI read is valid OpenAPI, as served."""

from openapi_spec_validator import OpenAPIV30SpecValidator


def test_the_served_openapi_document_is_valid_openapi_3_0(client):
    document = client.get("/openapi.json").json()
    errors = [
        f"{error.message[:200]} at {'/'.join(map(str, error.absolute_path))}"
        for error in OpenAPIV30SpecValidator(document).iter_errors()
    ]
    assert errors == []


def test_descriptions_are_not_cut_at_a_comma(client):
    document = client.get("/openapi.json").json()
    problem = document["paths"]["/health"]["get"]["responses"]["503"]["content"]["application/problem+json"]
    field = problem["schema"]["properties"]["field"]
    assert field["description"] == "The request field at fault, when there is one."
